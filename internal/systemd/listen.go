package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// listenFDsStart is the first descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// ErrBadListenEnv is wrapped by Listeners when LISTEN_PID or LISTEN_FDS
// is not a valid number.
var ErrBadListenEnv = errors.New("invalid socket-activation environment")

// Listeners returns the listening sockets systemd passed to this process
// by socket activation, in the order of the socket unit's Listen* lines,
// or none when the process was not socket-activated.
//
// It follows sd_listen_fds(3): the descriptors are 3, 4, ... up to
// LISTEN_FDS of them, and they are ours only if LISTEN_PID is our pid;
// otherwise they were meant for an ancestor that let the variables leak
// and none is touched. Either way LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES are removed from the environment, so that the programs
// the daemon runs (exec credential sources) do not take the sockets for
// theirs, and each passed descriptor is made close-on-exec so that they
// do not inherit it either.
//
// Each returned listener owns a duplicate of its descriptor; the original
// is closed. Closing a returned unix listener does not remove its socket
// file: that belongs to systemd, which keeps listening on it to start the
// daemon again on the next connection.
func Listeners() ([]net.Listener, error) {
	pidVar, fdsVar, namesVar := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		_ = os.Unsetenv(k)
	}
	n, err := countFDs(pidVar, fdsVar, os.Getpid())
	if err != nil || n == 0 {
		return nil, err
	}
	// Close-on-exec first, for all of them: should one fail below, the
	// rest must still not leak into children.
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		syscall.CloseOnExec(fd)
	}
	names := strings.Split(namesVar, ":")
	var lns []net.Listener
	for i := range n {
		fd := listenFDsStart + i
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		f := os.NewFile(uintptr(fd), name)
		ln, err := net.FileListener(f) // dups fd; the dup is close-on-exec
		_ = f.Close()
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("systemd: listener from passed fd %d (%s): %w", fd, name, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// countFDs returns how many descriptors the environment passes to pid:
// 0 when none are passed or they are meant for another process.
func countFDs(pidVar, fdsVar string, pid int) (int, error) {
	if pidVar == "" || fdsVar == "" {
		return 0, nil
	}
	want, err := strconv.Atoi(pidVar)
	if err != nil || want <= 0 {
		return 0, fmt.Errorf("systemd: %w: LISTEN_PID=%q", ErrBadListenEnv, pidVar)
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("systemd: %w: LISTEN_FDS=%q", ErrBadListenEnv, fdsVar)
	}
	if want != pid {
		return 0, nil
	}
	return n, nil
}
