package config

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// positions maps key paths to the line where they are written, so that
// validation errors found after decoding can still say file:line.
//
// Key paths use dots between keys and [i] for the i-th table of an array of
// tables: "dns.listen", "sites.dallas.checks[1].interval". A path that is not
// written in the file (a default) resolves to the line of its closest written
// parent, or 0.
type positions struct {
	lines map[string]int
}

// scanPositions reads TOML text line by line. It understands table headers,
// arrays of tables, dotted and quoted keys, and skips the bodies of
// multi-line strings and arrays; it is a locator, not a parser: the real
// parse is done by the toml package, which reports syntax errors itself.
func scanPositions(src []byte) *positions {
	p := &positions{lines: make(map[string]int)}
	counts := make(map[string]int) // array-of-tables path -> entries seen
	table := ""
	inString := ""    // closing delimiter of an open multi-line string
	var arr arrayScan // an array value that is still open
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if inString != "" {
			if strings.Contains(line, inString) {
				inString = ""
			}
			continue
		}
		if arr.depth > 0 {
			arr.feed(p, line, n)
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[[") {
			end := strings.Index(line, "]]")
			if end < 0 {
				continue
			}
			base := joinKeys(splitKey(line[2:end]))
			i := counts[base]
			counts[base] = i + 1
			table = base + "[" + strconv.Itoa(i) + "]"
			p.set(base, n)
			p.set(table, n)
			continue
		}
		if line[0] == '[' {
			end := strings.Index(line, "]")
			if end < 0 {
				continue
			}
			table = resolveTable(joinKeys(splitKey(line[1:end])), counts)
			p.set(table, n)
			continue
		}
		eq := keyEnd(line)
		if eq < 0 {
			continue
		}
		key := joinKeys(splitKey(line[:eq]))
		full := key
		if table != "" {
			full = table + "." + key
		}
		p.set(full, n)
		rest := strings.TrimSpace(line[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(rest, q) && !strings.Contains(rest[3:], q) {
				inString = q
			}
		}
		if strings.HasPrefix(rest, "[") {
			arr = arrayScan{key: full}
			arr.feed(p, rest, n)
		}
	}
	return p
}

// resolveTable turns "sites.dallas.checks.http" written after [[sites.dallas.checks]]
// into "sites.dallas.checks[N].http", N being the current entry.
func resolveTable(path string, counts map[string]int) string {
	keys := strings.Split(path, ".")
	out := ""
	for i, k := range keys {
		if out != "" {
			out += "."
		}
		out += k
		if c, ok := counts[strings.Join(keys[:i+1], ".")]; ok && c > 0 && i < len(keys)-1 {
			out += "[" + strconv.Itoa(c-1) + "]"
		}
	}
	return out
}

func (p *positions) set(path string, line int) {
	if _, ok := p.lines[path]; !ok {
		p.lines[path] = line
	}
}

// line returns the line of path, or of its closest parent that is written.
func (p *positions) line(path string) int {
	if p == nil {
		return 0
	}
	for path != "" {
		if n, ok := p.lines[path]; ok {
			return n
		}
		// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"
		if i := strings.LastIndexAny(path, ".["); i >= 0 {
			path = path[:i]
		} else {
			path = ""
		}
	}
	return 0
}

// keyEnd returns the index of the '=' that ends the key of a key/value line,
// skipping quoted key parts, or -1.
func keyEnd(line string) int {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			return i
		case c == '#':
			return -1
		}
	}
	return -1
}

// splitKey splits a dotted key, honouring quotes, and trims each part.
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

func joinKeys(k []string) string { return strings.Join(k, ".") }

// arrayScan follows an array value over one or more lines and records the
// line where each element starts, as key[i].
type arrayScan struct {
	key    string
	depth  int  // open [ and { (0: outside the array, 1: between its elements)
	idx    int  // index of the next element
	expect bool // the next value at depth 1 starts an element
}

// feed scans s, a line (or the rest of one) at line n. Strings are skipped
// (quotes do not span lines within arrays here); a comment ends the line.
func (a *arrayScan) feed(p *positions, s string, n int) {
	var quote byte
	start := func() {
		if a.depth == 1 && a.expect {
			p.set(a.key+"["+strconv.Itoa(a.idx)+"]", n)
			a.idx++
			a.expect = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if quote != 0 {
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r':
		case '#':
			return
		case '[', '{':
			start()
			a.depth++
			if a.depth == 1 {
				a.expect = true
			}
		case ']', '}':
			a.depth--
			if a.depth <= 0 {
				a.depth = 0
				return
			}
		case ',':
			if a.depth == 1 {
				a.expect = true
			}
		default:
			start()
			if c == '"' || c == '\'' {
				quote = c
			}
		}
	}
}
