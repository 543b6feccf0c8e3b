package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/geodnsd/geodnsd/config"
)

// execOutputMax bounds what is kept of a command's stdout and stderr.
const execOutputMax = 4 << 10

// newExec runs a command (no shell) with the target in its environment:
// GEODNSD_SITE, GEODNSD_ENDPOINT, GEODNSD_ADDRESS (the answered address),
// GEODNSD_PROBE (the probed host) and GEODNSD_PORT. Exit status 0 is up; the
// first line of stdout is kept as the reason (of stderr when stdout is empty).
// At the deadline the command's process group is killed.
func newExec(c *config.Check) (ProbeFunc, error) {
	if len(c.Command) == 0 {
		return nil, errors.New("exec: no command")
	}
	argv := append([]string(nil), c.Command...)
	return func(ctx context.Context, t Target) Result {
		var res Result
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		port := ""
		if t.Port != 0 {
			port = strconv.Itoa(t.Port)
		}
		cmd.Env = append(os.Environ(),
			"GEODNSD_SITE="+t.Site,
			"GEODNSD_ENDPOINT="+t.Endpoint,
			"GEODNSD_ADDRESS="+t.Address,
			"GEODNSD_PROBE="+t.Host,
			"GEODNSD_PORT="+port,
		)
		stdout := &cappedBuffer{max: execOutputMax}
		stderr := &cappedBuffer{max: execOutputMax}
		cmd.Stdout, cmd.Stderr = stdout, stderr
		cmd.WaitDelay = 500 * time.Millisecond // children holding the pipes do not hold us
		killGroup(cmd)
		start := time.Now()
		err := cmd.Run()
		res.Phases = append(res.Phases, Phase{"run", time.Since(start)})
		line := firstLine(stdout.buf)
		if err == nil {
			res.Detail = line
			if res.Detail == "" {
				res.Detail = "exit status 0"
			}
			return res
		}
		if line == "" {
			line = firstLine(stderr.buf)
		}
		var ee *exec.ExitError
		switch {
		case ctx.Err() != nil:
			err = deadlineErr(ctx, fmt.Errorf("%s killed: %w", argv[0], ctx.Err()))
		case errors.As(err, &ee):
			err = fmt.Errorf("%s: %s", argv[0], ee.ProcessState.String())
		default:
			err = fmt.Errorf("%s: %w", argv[0], err)
		}
		if line != "" {
			err = fmt.Errorf("%w: %s", err, line)
		}
		res.Err = err
		return res
	}, nil
}
