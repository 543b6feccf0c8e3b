package zones

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestParseBad(t *testing.T) {
	cases := []struct {
		file string
		want []string // each a substring of the error, "file:line: message"
	}{
		{"nosoa.zone", []string{"nosoa.zone:3: zone bad.test. has no SOA record at its apex"}},
		{"twosoa.zone", []string{"twosoa.zone:4: zone bad.test. has more than one SOA record"}},
		{"soanotapex.zone", []string{"soanotapex.zone:5: www.bad.test.: SOA record not at zone apex"}},
		{"nons.zone", []string{"nons.zone:3: zone bad.test. has no NS records at its apex"}},
		{"cnameother.zone", []string{"cnameother.zone:6: www.bad.test.: CNAME and other data (A)"}},
		{"twocname.zone", []string{"twocname.zone:6: www.bad.test.: more than one CNAME record"}},
		{"cnameapex.zone", []string{"cnameapex.zone:5: bad.test.: CNAME at zone apex"}},
		{"outofzone.zone", []string{"outofzone.zone:5: www.example.org.: out of zone data"}},
		{"belowcut.zone", []string{"belowcut.zone:6: www.sub.bad.test. TXT: data below delegation point sub.bad.test. is not glue"}},
		{"nsnoaddr.zone", []string{"nsnoaddr.zone:5: bad.test. NS target ns2.bad.test. has no address records"}},
		{"gluemissing.zone", []string{"gluemissing.zone:5: sub.bad.test. NS target ns.sub.bad.test. has no address records"}},
		{"mxcname.zone", []string{"mxcname.zone:5: bad.test. MX target mail.bad.test. is a CNAME (illegal)"}},
		{"srvcname.zone", []string{"srvcname.zone:5: _sip._udp.bad.test. SRV target sip.bad.test. is a CNAME (illegal)"}},
		{"nscname.zone", []string{"nscname.zone:4: bad.test. NS target ns.bad.test. is a CNAME (illegal)"}},
		{"dname.zone", []string{"dname.zone:6: old.bad.test.: more than one DNAME record", "dname.zone:8: x.old.bad.test.: data below the DNAME at old.bad.test."}},
		{"class.zone", []string{"class.zone:5: www.bad.test.: class CH not supported"}},
		{"include.zone", []string{"include.zone:5: $INCLUDE not allowed"}},
		{"generate.zone", []string{"generate.zone:5: $GENERATE not supported"}},
		{"syntax.zone", []string{`syntax.zone:5: bad A A: "192.0.2.300"`}},
		{"caatag.zone", []string{
			`caatag.zone:6: long.bad.test. CAA: CAA tag "abcdefghijklmnop": must be 1 to 15 ASCII letters and digits`,
			`caatag.zone:7: bad.bad.test. CAA: CAA tag "is-sue": must be 1 to 15 ASCII letters and digits`,
		}},
		{"generic.zone", []string{
			`generic.zone:6: long.bad.test. A: generic RDATA (\#) of 5 bytes is not a valid A`,
			`generic.zone:7: mx.bad.test. MX: generic RDATA (\#) of 8 bytes is not a valid MX`,
		}},
		{"genericshort.zone", []string{"genericshort.zone:5: A: dns: overflow unpacking a"}},
		{"txtlong.zone", []string{
			"txtlong.zone:6: long.bad.test. TXT: TXT string of 256 bytes: at most 255",
			"txtlong.zone:9: bare.bad.test. TXT: TXT string of 256 bytes: at most 255",
		}},
		{"many.zone", []string{
			"many.zone:6: a.bad.test.: CNAME and other data (TXT)",
			`many.zone:7: b.bad.test. CAA: CAA tag "bad-tag"`,
			"many.zone:8: c.example.org.: out of zone data",
		}},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tc.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			z, err := Parse(strings.NewReader(string(data)), "", path)
			if err == nil {
				t.Fatalf("no error, zone %s", z.Origin())
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, "testdata/bad/"+w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			if n := len(strings.Split(msg, "\n")); n != len(tc.want) {
				t.Errorf("%d errors, want %d: %s", n, len(tc.want), msg)
			}
		})
	}
	// Every bad file has a case.
	files, _ := filepath.Glob("testdata/bad/*.zone")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
}

func TestParseOrigin(t *testing.T) {
	const body = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
	// Given origin.
	z, err := Parse(strings.NewReader(body), "Example.TEST", "x")
	if err != nil || z.Origin() != "example.test." || z.File() != "x" || z.SOA().Serial != 1 || z.Records() != 3 {
		t.Fatalf("given origin: %v %+v", err, z)
	}
	// Leading $ORIGIN, after $TTL and comments.
	z, err = Parse(strings.NewReader("; c\n\n$TTL 60\n$ORIGIN lead.test.\n"+body[8:]), "", "x")
	if err != nil || z.Origin() != "lead.test." {
		t.Fatalf("leading origin: %v", err)
	}
	// No origin at all.
	if _, err = Parse(strings.NewReader(body), "", "x"); err == nil || !strings.HasPrefix(err.Error(), "x:1: no origin") {
		t.Fatalf("no origin: %v", err)
	}
	// Store rule: leading $ORIGIN beats the file name.
	z, err = parse([]byte("$ORIGIN lead.test.\n"+body), "", "other.test.", "x")
	if err != nil || z.Origin() != "lead.test." {
		t.Fatalf("store rule: %v", err)
	}
	z, err = parse([]byte(body), "", "file.test.", "x")
	if err != nil || z.Origin() != "file.test." {
		t.Fatalf("store rule fallback: %v", err)
	}
	// Empty input.
	if _, err = Parse(strings.NewReader(""), "empty.test.", ""); err == nil || !strings.Contains(err.Error(), "<zone>:1: zone empty.test. has no SOA") {
		t.Fatalf("empty: %v", err)
	}
}

func TestParseTTLMismatchWarns(t *testing.T) {
	const body = "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nns 120 A 192.0.2.2\nns 60 A 192.0.2.1\n"
	z, err := Parse(strings.NewReader(body), "ttl.test.", "ttl.zone")
	if err != nil {
		t.Fatal(err)
	}
	if w := z.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "ttl.zone:5: ns.ttl.test. A: TTL 120 differs") {
		t.Fatalf("warnings = %q", w)
	}
	a := z.nodes["ns.ttl.test."].get(1)
	if len(a) != 2 || a[1].Header().Ttl != 60 {
		t.Fatalf("rrset = %v", a)
	}
}

func TestParseErrorCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n")
	for range 50 {
		b.WriteString("x.example.org. A 192.0.2.1\n")
	}
	_, err := Parse(strings.NewReader(b.String()), "cap.test.", "cap.zone")
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "cap.zone: too many errors" {
		t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}

func TestOriginFromFileName(t *testing.T) {
	for in, want := range map[string]string{
		"example.com.zone":           "example.com.",
		"example.com":                "example.com.",
		"Example.COM.":               "example.com.",
		"/etc/zones/example.zone":    "example.",
		"zones/sub.example.com.zone": "sub.example.com.",
	} {
		if got := OriginFromFileName(in); got != want {
			t.Errorf("OriginFromFileName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse feeds zone text to Parse. What fails to load must say where;
// what loads must answer: every question about every name of the zone (each
// type it holds, a few it may not, ANY, and a name below it) gives a Result
// that packs into a message which unpacks again. The seeds are the testdata
// files.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.zone")
	bad, _ := filepath.Glob("testdata/bad/*.zone")
	for _, p := range append(files, bad...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(escapedZone)
	f.Fuzz(func(t *testing.T, text string) {
		z, err := Parse(strings.NewReader(text), "fuzz.test.", "fuzz.zone")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.zone") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		s := NewSnapshot(z)
		ask := func(name string, qt uint16) {
			res := s.Lookup(name, qt, dns.ClassINET, false)
			m := &dns.Msg{
				MsgHdr:   dns.MsgHdr{Response: true, Authoritative: res.Authoritative, Rcode: res.Rcode},
				Compress: true,
				Question: []dns.Question{{Name: name, Qtype: qt, Qclass: dns.ClassINET}},
				Answer:   res.Answer, Ns: res.Ns, Extra: res.Extra,
			}
			b, err := m.Pack()
			if err != nil {
				t.Fatalf("%s %s loaded but the answer does not pack: %v\n%v", name, dns.Type(qt), err, m)
			}
			if err := new(dns.Msg).Unpack(b); err != nil {
				t.Fatalf("%s %s: packed answer does not unpack: %v\n%v", name, dns.Type(qt), err, m)
			}
		}
		for _, q := range []string{"fuzz.test.", "www.fuzz.test.", "a.b.c.fuzz.test.", "*.fuzz.test."} {
			for _, qt := range []uint16{1, 2, 5, 6, 15, 28, 39, 43, 255} {
				ask(q, qt)
			}
		}
		for name, n := range z.nodes {
			for _, set := range n.rrsets {
				ask(name, set.typ)
			}
			ask(name, dns.TypeA)
			ask(name, dns.TypeANY)
			ask("x."+name, dns.TypeA)
		}
	})
}

// TestParseNoTTL: a zone without $TTL (issue 10's own example) loads as NSD
// and Knot load it: a record without a TTL gets 3600 until an explicit TTL,
// which later records without one then take (RFC 1035 §5.1).
func TestParseNoTTL(t *testing.T) {
	const body = "$ORIGIN nottl.test.\n@ SOA ns1 host 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\nx 60 A 192.0.2.2\ny A 192.0.2.3\n"
	z, err := Parse(strings.NewReader(body), "", "nottl.zone")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"nottl.test.": 3600, "ns1.nottl.test.": 3600, "x.nottl.test.": 60, "y.nottl.test.": 60} {
		typ := dns.TypeA
		if name == "nottl.test." {
			typ = dns.TypeSOA
		}
		if rrs := z.nodes[name].get(typ); len(rrs) != 1 || rrs[0].Header().Ttl != want {
			t.Errorf("%s: %v, want TTL %d", name, rrs, want)
		}
	}
}
