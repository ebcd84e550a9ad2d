package testenv

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child if the test process dies
// first, so a crashed or killed test run leaves no registry behind.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
