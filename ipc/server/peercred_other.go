//go:build !linux && !darwin

package server

import (
	"fmt"
	"runtime"
)

func peerCred(int) (Peer, error) {
	return Peer{}, fmt.Errorf("peer credentials are not implemented on %s", runtime.GOOS)
}
