// Package systemd speaks the two small systemd protocols the daemon
// needs, without a dependency: socket activation (LISTEN_PID, LISTEN_FDS,
// sd_listen_fds(3)) and readiness notification (NOTIFY_SOCKET,
// sd_notify(3)). Each is a few lines; go-systemd would add a module for
// them.
//
// Both are no-ops outside systemd: Listeners returns no listeners and
// Notify sends nothing when the variables are unset, so the daemon calls
// them unconditionally.
package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Notification states (sd_notify(3)).
const (
	StateReady     = "READY=1"
	StateReloading = "RELOADING=1"
	StateStopping  = "STOPPING=1"
)

// ErrBadNotifySocket is wrapped by Notify when $NOTIFY_SOCKET is neither
// an absolute path nor an abstract ("@") socket name.
var ErrBadNotifySocket = errors.New("unsupported NOTIFY_SOCKET address")

// Notify sends the states ("READY=1", "STATUS=...") to $NOTIFY_SOCKET as
// one datagram, one state per line. It returns nil without sending when
// NOTIFY_SOCKET is unset: the daemon is not run by systemd, or its unit
// is not Type=notify.
//
// The variable is read on every call and left set. Children started by
// the daemon (exec credential sources) inherit it, which is harmless:
// the unit says NotifyAccess=main, so systemd ignores anyone else.
func Notify(state ...string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	return send(addr, strings.Join(state, "\n"))
}

// send writes msg to the datagram socket addr.
func send(addr, msg string) error {
	// An abstract socket is written "@name"; package net maps the "@" to
	// the leading NUL byte the kernel expects, as systemd itself does.
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("systemd: notify: %w %q (want an absolute path or @abstract)", ErrBadNotifySocket, addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("systemd: notify: %w", err)
	}
	return nil
}

// Ready tells systemd the service is up: READY=1, with STATUS=status
// unless status is empty. systemd starts ordering dependants after it.
func Ready(status string) error {
	if status == "" {
		return Notify(StateReady)
	}
	return Notify(StateReady, Status(status))
}

// Reloading tells systemd a reload has begun: RELOADING=1 with
// MONOTONIC_USEC, the CLOCK_MONOTONIC time in microseconds, which systemd
// 253 and later require to match the reload to the request. Send Ready
// when the reload is over, whether it succeeded or not.
func Reloading() error {
	if usec, ok := monotonicUsec(); ok {
		return Notify(StateReloading, "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
	}
	return Notify(StateReloading)
}

// Stopping tells systemd the service is shutting down: STOPPING=1.
func Stopping() error { return Notify(StateStopping) }

// Status returns the STATUS= state for s, the one line `systemctl status`
// shows. Line breaks become spaces: a newline would end the assignment
// and let the rest pose as another state.
func Status(s string) string {
	return "STATUS=" + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
