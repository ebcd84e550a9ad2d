package ipc

import (
	"os"
	"path/filepath"
	"strconv"
)

// SocketPath returns the daemon's socket path. The daemon, the CLI and the
// helper all call it, so they agree without configuration:
//
//  1. $CONNECTORD_SOCKET, verbatim, if set (tests, unusual setups);
//  2. $XDG_RUNTIME_DIR/connectord/connectord.sock if XDG_RUNTIME_DIR is set
//     to an absolute path (the normal case under a systemd user session: a
//     per-user tmpfs, 0700, cleaned at logout);
//  3. /tmp/connectord-$UID/connectord.sock otherwise, e.g. under cron or
//     sudo, where no runtime dir is set. ipc/server.Listen creates that
//     directory 0700 and refuses it if another user owns it.
//
// getenv is os.Getenv when nil; tests inject their own.
func SocketPath(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv("CONNECTORD_SOCKET"); p != "" {
		return p
	}
	// The XDG base-directory spec says a relative path in these variables
	// is invalid and must be ignored.
	if dir := getenv("XDG_RUNTIME_DIR"); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, "connectord", "connectord.sock")
	}
	// Literally /tmp, not os.TempDir(): $TMPDIR differs between a login
	// shell, cron and sudo, and every process must find the same socket.
	return filepath.Join("/tmp", "connectord-"+strconv.Itoa(os.Getuid()), "connectord.sock")
}
