package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenGram opens a datagram socket for Notify to write to and points
// NOTIFY_SOCKET at it.
func listenGram(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading the notification: %v", err)
	}
	return string(buf[:n])
}

func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Not parallel: the tests in this file set process environment.

func TestNotifyPayloads(t *testing.T) {
	tests := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", func() error { return Ready("") }, "READY=1"},
		{"ready with status", func() error { return Ready("3 connectors") }, "READY=1\nSTATUS=3 connectors"},
		{"status is one line", func() error { return Notify(Status("a\nREADY=1\r\nb")) }, "STATUS=a READY=1 b"},
		{"stopping", Stopping, "STOPPING=1"},
		{"raw states", func() error { return Notify("WATCHDOG=1", "STATUS=x") }, "WATCHDOG=1\nSTATUS=x"},
	}
	for _, abstract := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/abstract=%v", tt.name, abstract), func(t *testing.T) {
				addr := filepath.Join(shortDir(t), "notify")
				if abstract {
					addr = "@connectord-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
				}
				c := listenGram(t, addr)
				if err := tt.send(); err != nil {
					t.Fatal(err)
				}
				if got := recv(t, c); got != tt.want {
					t.Errorf("sent %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestReloadingCarriesMonotonicUsec(t *testing.T) {
	c := listenGram(t, filepath.Join(shortDir(t), "notify"))
	var before unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
		t.Fatal(err)
	}
	if err := Reloading(); err != nil {
		t.Fatal(err)
	}
	got := recv(t, c)
	var after unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &after)
	first, rest, ok := strings.Cut(got, "\n")
	if first != StateReloading || !ok {
		t.Fatalf("sent %q, want RELOADING=1 then MONOTONIC_USEC", got)
	}
	v, ok := strings.CutPrefix(rest, "MONOTONIC_USEC=")
	usec, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil {
		t.Fatalf("sent %q, want MONOTONIC_USEC=<integer>", got)
	}
	if lo, hi := before.Nano()/1000, after.Nano()/1000; usec < lo || usec > hi {
		t.Errorf("MONOTONIC_USEC=%d, want CLOCK_MONOTONIC between %d and %d", usec, lo, hi)
	}
}

func TestNotifyUnsetIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	for _, f := range []func() error{func() error { return Ready("x") }, Reloading, Stopping} {
		if err := f(); err != nil {
			t.Errorf("with NOTIFY_SOCKET unset: %v, want nil", err)
		}
	}
}

func TestNotifyErrors(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "relative/sock")
	if err := Stopping(); !errors.Is(err, ErrBadNotifySocket) {
		t.Errorf("relative NOTIFY_SOCKET: %v, want ErrBadNotifySocket", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := Stopping(); err == nil || !strings.Contains(err.Error(), "systemd: notify") {
		t.Errorf("missing socket: %v, want a systemd: notify error", err)
	}
}

func TestCountFDs(t *testing.T) {
	t.Parallel()
	const me = 4242
	tests := []struct {
		pid, fds string
		want     int
		bad      bool
	}{
		{"", "", 0, false},
		{"4242", "", 0, false},
		{"", "2", 0, false},
		{"4242", "1", 1, false},
		{"4242", "3", 3, false},
		{"4242", "0", 0, false},
		{"1", "1", 0, false}, // meant for another process
		{"x", "1", 0, true},
		{"4242", "one", 0, true},
		{"4242", "-1", 0, true},
		{"-4242", "1", 0, true},
		{"0", "1", 0, true},
	}
	for _, tt := range tests {
		n, err := countFDs(tt.pid, tt.fds, me)
		if n != tt.want || (err != nil) != tt.bad {
			t.Errorf("countFDs(LISTEN_PID=%q, LISTEN_FDS=%q) = %d, %v; want %d, error %v", tt.pid, tt.fds, n, err, tt.want, tt.bad)
		}
		if tt.bad && !errors.Is(err, ErrBadListenEnv) {
			t.Errorf("countFDs(%q, %q): %v does not wrap ErrBadListenEnv", tt.pid, tt.fds, err)
		}
	}
}

func TestListenersEnvHandling(t *testing.T) {
	tests := []struct {
		name     string
		pid, fds string
		bad      bool
	}{
		{"not activated", "", "", false},
		{"another process's", "1", "1", false},
		{"garbage", "me", "many", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range map[string]string{"LISTEN_PID": tt.pid, "LISTEN_FDS": tt.fds, "LISTEN_FDNAMES": "connectord.socket"} {
				t.Setenv(k, v)
			}
			lns, err := Listeners()
			if len(lns) != 0 || (err != nil) != tt.bad {
				t.Errorf("Listeners() = %d listeners, %v; want none, error %v", len(lns), err, tt.bad)
			}
			for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s=%q still set after Listeners; children would inherit it", k, v)
				}
			}
		})
	}
}

// TestListenersFromSystemd passes a listening socket as fd 3 to a copy
// of this test binary, as systemd does, and checks that Listeners there
// takes it, clears the environment, leaves fd 3 close-on-exec and
// serves a connection on it.
func TestListenersFromSystemd(t *testing.T) {
	if os.Getenv("SYSTEMD_TEST_CHILD") == "1" {
		listenersChild()
		return
	}
	sock := filepath.Join(shortDir(t), "s.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// LISTEN_PID must be the child's own pid, known only after fork:
	// sh sets it to its $$ and execs, keeping the pid, as systemd's
	// own fork-then-exec does.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" -test.run='^TestListenersFromSystemd$'`, os.Args[0])
	cmd.Env = append(os.Environ(), "SYSTEMD_TEST_CHILD=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=connectord.socket")
	cmd.ExtraFiles = []*os.File{f}
	out := make(chan string, 1)
	go func() {
		b, err := cmd.CombinedOutput()
		out <- fmt.Sprintf("%v\n%s", err, b)
	}()
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, _ := conn.Read(buf)
	got := string(buf[:n])
	if got != "ok" {
		t.Errorf("child answered %q, want \"ok\"; its output:\n%s", got, <-out)
		return
	}
	if res := <-out; !strings.HasPrefix(res, "<nil>") {
		t.Errorf("child failed:\n%s", res)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("socket file gone after the child closed its listener (it belongs to systemd): %v", err)
	}
}

// listenersChild is the socket-activated side of TestListenersFromSystemd.
func listenersChild() {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(1)
	}
	lns, err := Listeners()
	if err != nil || len(lns) != 1 {
		fail("Listeners() = %d, %v; want 1 listener", len(lns), err)
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			fail("%s still set", k)
		}
	}
	// fd 3 itself is closed (the listener holds a close-on-exec dup):
	// fcntl must fail, or show FD_CLOEXEC if something reopened it.
	if flags, err := unix.FcntlInt(3, unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
		fail("fd 3 is open without FD_CLOEXEC")
	}
	ln := lns[0]
	defer ln.Close()
	conn, err := ln.Accept()
	if err != nil {
		fail("accept: %v", err)
	}
	fmt.Fprint(conn, "ok")
	conn.Close()
}
