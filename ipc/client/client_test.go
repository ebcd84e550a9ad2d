package client_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// shortDir returns a fresh directory with a short path: a Unix socket path
// must fit in 108 bytes, and t.TempDir() includes the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// staleSocket leaves a socket file with no listener behind, as a daemon
// killed with SIGKILL does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

func TestNotRunning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T) string // returns the socket path
		errno syscall.Errno
	}{
		{"missing socket", func(t *testing.T) string { return filepath.Join(shortDir(t), "cd.sock") }, syscall.ENOENT},
		{"missing directory", func(t *testing.T) string { return filepath.Join(shortDir(t), "nope", "cd.sock") }, syscall.ENOENT},
		{"stale socket", func(t *testing.T) string {
			p := filepath.Join(shortDir(t), "cd.sock")
			staleSocket(t, p)
			return p
		}, syscall.ECONNREFUSED},
		{"not a socket", func(t *testing.T) string {
			p := filepath.Join(shortDir(t), "cd.sock")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, 0}, // ECONNREFUSED on Linux, ENOTSOCK elsewhere
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.setup(t)
			c := client.New(path)
			if c.Path() != path {
				t.Fatalf("Path() = %q, want %q", c.Path(), path)
			}
			resp, err := c.Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
			if err == nil {
				t.Fatalf("got %v, want an error", resp)
			}
			if !client.IsNotRunning(err) {
				t.Fatalf("IsNotRunning(%v) = false", err)
			}
			var de *client.DialError
			if !errors.As(err, &de) || de.Path != path || (tt.errno != 0 && !errors.Is(err, tt.errno)) {
				t.Fatalf("got %#v, want a *DialError for %s wrapping %v", err, path, tt.errno)
			}
			for _, want := range []string{"not running", path, "connectord start", "systemctl --user start connectord.socket"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestIsNotRunning(t *testing.T) {
	t.Parallel()
	de := &client.DialError{Path: "/p", Err: syscall.ENOENT}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("x"), false},
		{ipc.ErrUnavailable, false},
		{de, true},
		{errors.Join(errors.New("autostart"), de), true},
	}
	for _, tt := range tests {
		if got := client.IsNotRunning(tt.err); got != tt.want {
			t.Errorf("IsNotRunning(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// A socket another user owns (here: no permission on the directory) is not
// "not running": starting a daemon would not help.
func TestPermissionDeniedIsNotNotRunning(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := shortDir(t)
	path := filepath.Join(dir, "cd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	_, err = client.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
	if err == nil || client.IsNotRunning(err) || !errors.Is(err, syscall.EACCES) {
		t.Fatalf("got %v, want EACCES and IsNotRunning false", err)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	t.Parallel()
	path := "/tmp/" + strings.Repeat("d", 120) + "/cd.sock"
	_, err := client.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
	if err == nil || client.IsNotRunning(err) || !strings.Contains(err.Error(), "CONNECTORD_SOCKET") {
		t.Fatalf("got %v", err)
	}
}

// A request that cannot be encoded fails before dialling.
func TestInvalidRequestNotSent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	_, err := client.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpStore, Secret: strings.Repeat("x", ipc.MaxMessageSize)})
	if !errors.Is(err, ipc.ErrInvalid) || client.IsNotRunning(err) {
		t.Fatalf("got %v, want ErrInvalid without dialling", err)
	}
	if _, err := client.New(path).Do(t.Context(), nil); err == nil {
		t.Fatal("nil request accepted")
	}
}

// fakeDaemon accepts connections on a fresh socket and runs serve on each;
// the real server's tests live in ipc/server.
func fakeDaemon(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "cd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				serve(conn)
			}()
		}
	}()
	return path
}

func TestDoAgainstFakeDaemon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  string // written after reading the request; "" = close
		check   func(t *testing.T, resp *ipc.Response, err error)
		timeout time.Duration
	}{
		{"credentials", `{"v":1,"username":"u","secret":"s"}` + "\n", func(t *testing.T, resp *ipc.Response, err error) {
			if err != nil || resp.Username != "u" || resp.Secret != "s" {
				t.Fatalf("got %v, %v", resp, err)
			}
		}, 0},
		{"error response", `{"v":1,"error":{"code":"not_found","message":"no credentials for r"}}` + "\n", func(t *testing.T, resp *ipc.Response, err error) {
			var ie *ipc.Error
			if !errors.Is(err, ipc.ErrNotFound) || !errors.As(err, &ie) || err.Error() != "no credentials for r" || resp != nil {
				t.Fatalf("got %v, %#v", resp, err)
			}
		}, 0},
		{"closed without answer", "", func(t *testing.T, resp *ipc.Response, err error) {
			if err == nil || client.IsNotRunning(err) || !strings.Contains(err.Error(), "without answering") {
				t.Fatalf("got %v, %v", resp, err)
			}
		}, 0},
		{"garbage answer", "HTTP/1.1 400 Bad Request\n", func(t *testing.T, resp *ipc.Response, err error) {
			if !errors.Is(err, ipc.ErrInvalid) || !strings.Contains(err.Error(), "reading the answer") {
				t.Fatalf("got %v, %v", resp, err)
			}
		}, 0},
		{"newer daemon", `{"v":2,"error":{"code":"version","message":"speak v2"}}` + "\n", func(t *testing.T, resp *ipc.Response, err error) {
			if !errors.Is(err, ipc.ErrVersion) {
				t.Fatalf("got %v, %v", resp, err)
			}
		}, 0},
		{"context deadline", "hang", func(t *testing.T, resp *ipc.Response, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, %v", resp, err)
			}
		}, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var gotReq *ipc.Request
			reqs := make(chan *ipc.Request, 1)
			path := fakeDaemon(t, func(conn net.Conn) {
				req, _ := ipc.DecodeRequest(bufio.NewReader(conn))
				reqs <- req
				switch tt.answer {
				case "":
				case "hang":
					time.Sleep(5 * time.Second)
				default:
					_, _ = conn.Write([]byte(tt.answer))
				}
			})
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			in := &ipc.Request{Op: ipc.OpGet, ServerURL: "r"}
			start := time.Now()
			resp, err := client.New(path).Do(ctx, in)
			if tt.timeout > 0 && time.Since(start) > tt.timeout+time.Second {
				t.Errorf("Do took %s with a %s deadline", time.Since(start), tt.timeout)
			}
			tt.check(t, resp, err)
			gotReq = <-reqs
			if gotReq == nil || gotReq.V != ipc.Version || gotReq.Op != ipc.OpGet || gotReq.ServerURL != "r" {
				t.Errorf("daemon received %v", gotReq)
			}
			if in.V != 0 {
				t.Errorf("Do modified the caller's request: V = %d", in.V)
			}
		})
	}
}

func TestDoCancel(t *testing.T) {
	t.Parallel()
	path := fakeDaemon(t, func(conn net.Conn) { time.Sleep(5 * time.Second) })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := client.New(path).Do(ctx, &ipc.Request{Op: ipc.OpPing})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %s, want context.Canceled promptly", err, time.Since(start))
	}
}
