//go:build !unix

package health

import "os/exec"

// killGroup: elsewhere the default (kill the process) applies.
func killGroup(cmd *exec.Cmd) {}
