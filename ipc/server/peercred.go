package server

import (
	"fmt"
	"net"
	"syscall"
)

// peerOf returns the credentials of c's peer. A connection that cannot be
// asked (no file descriptor, an unsupported OS) is an error, and Serve
// refuses it: not knowing who is asking is not a reason to answer.
func peerOf(c net.Conn) (Peer, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Peer{}, fmt.Errorf("%T has no file descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var (
		p    Peer
		perr error
	)
	if err := raw.Control(func(fd uintptr) { p, perr = peerCred(int(fd)) }); err != nil {
		return Peer{}, err
	}
	return p, perr
}
