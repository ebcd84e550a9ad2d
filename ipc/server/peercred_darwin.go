package server

import "golang.org/x/sys/unix"

// macOS has no SO_PEERCRED: LOCAL_PEERCRED gives uid and groups, and
// LOCAL_PEERPID the pid.
func peerCred(fd int) (Peer, error) {
	xu, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return Peer{}, err
	}
	p := Peer{UID: xu.Uid}
	if xu.Ngroups > 0 {
		p.GID = xu.Groups[0]
	}
	if pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID); err == nil {
		p.PID = int32(pid)
	}
	return p, nil
}
