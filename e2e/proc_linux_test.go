package e2e

import (
	"os"
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child if the test process dies
// first, so a crashed test run leaves no daemon or client behind.
func setDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// holdFlock takes an exclusive flock on path (created 0600 if missing), as
// a daemon does on its socket's ".lock" file while it starts and serves.
// release drops it.
func holdFlock(path string) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
