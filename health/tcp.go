package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/geodnsd/geodnsd/config"
)

// maxExpectBytes bounds what a tcp check reads while looking for its expected line.
const maxExpectBytes = 64 << 10

// newTCP connects; then writes send (if any) and reads lines until one
// matches expect (if any).
func newTCP(c *config.Check) (ProbeFunc, error) {
	return func(ctx context.Context, t Target) Result {
		var res Result
		conn := connect(ctx, t, &res)
		if conn == nil {
			return res
		}
		defer conn.Close()
		defer watch(ctx, conn)()
		if c.Send != "" {
			msg := c.Send
			if !strings.HasSuffix(msg, "\n") {
				msg += "\r\n"
			}
			if _, err := io.WriteString(conn, msg); err != nil {
				res.Err = fmt.Errorf("%s: send: %w", t.HostPort(), deadlineErr(ctx, err))
				return res
			}
		}
		if !c.Expect.Set() {
			res.Detail = "connected"
			return res
		}
		line, err := expectLine(bufio.NewReader(io.LimitReader(conn, maxExpectBytes)), c.Expect)
		if err != nil {
			res.Err = fmt.Errorf("%s: %w", t.HostPort(), deadlineErr(ctx, err))
			return res
		}
		res.Detail = clip(line, 200)
		return res
	}, nil
}

// expectLine reads lines until one matches re.
func expectLine(r *bufio.Reader, re config.Regexp) (string, error) {
	last := ""
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" || err == nil {
			if re.MatchString(line) {
				return line, nil
			}
			last = line
		}
		if err != nil {
			if last == "" {
				return "", fmt.Errorf("no line matches %q: %w", re.String(), err)
			}
			return "", fmt.Errorf("no line matches %q (last %q): %w", re.String(), clip(last, 100), err)
		}
	}
}
