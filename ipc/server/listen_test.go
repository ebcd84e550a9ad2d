package server_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/connectord/connectord/ipc/server"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
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

func dialOK(t *testing.T, path string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
}

func TestListenModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // dir is the socket's parent
	}{
		{"directory created", func(*testing.T, string) {}},
		{"directory tightened", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777|fs.ModeSetgid); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory already right", func(t *testing.T, dir string) {
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(shortDir(t), "a", "connectord")
			if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
				t.Fatal(err)
			}
			tt.prepare(t, dir)
			path := filepath.Join(dir, "cd.sock")
			ln, err := server.Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := mode(t, dir); got != fs.ModeDir|0o700 {
				t.Errorf("directory mode %v, want drwx------", got)
			}
			if got := mode(t, path); got != fs.ModeSocket|0o600 {
				t.Errorf("socket mode %v, want Srw-------", got)
			}
			dialOK(t, path)
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket still there after Close: %v", err)
			}
			if err := ln.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestListenStaleSocketReplaced(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	staleSocket(t, path)
	ln, err := server.Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	dialOK(t, path)
}

// A socket some other process listens on (here a plain net.Listen, as
// systemd's socket would be) is live: refused, and left working.
func TestListenLiveSocketRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	live, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ln, err := server.Listen(path)
	if err == nil {
		ln.Close()
		t.Fatal("Listen took over a live socket")
	}
	if !errors.Is(err, server.ErrAlreadyListening) || !strings.Contains(err.Error(), "another connectord is already listening on "+path) {
		t.Fatalf("got %v", err)
	}
	dialOK(t, path)
}

// A second Listen in the same place fails on the lock, and succeeds once
// the first listener is closed.
func TestListenTwice(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	first, err := server.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Listen(path); !errors.Is(err, server.ErrAlreadyListening) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Listen: got %v, want ErrAlreadyListening", err)
	}
	dialOK(t, path) // the first is untouched
	first.Close()
	second, err := server.Listen(path)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	second.Close()
}

// The race the lock file exists for: many daemons starting at once over a
// stale socket. Exactly one must win, and its socket must be the one on
// disk.
func TestListenConcurrentStartOverStaleSocket(t *testing.T) {
	t.Parallel()
	for range 20 {
		path := filepath.Join(shortDir(t), "cd.sock")
		staleSocket(t, path)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			winners  []net.Listener
			failures []error
		)
		for range 8 {
			wg.Go(func() {
				ln, err := server.Listen(path)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failures = append(failures, err)
					return
				}
				winners = append(winners, ln)
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("%d listeners on one path, want 1 (failures: %v)", len(winners), failures)
		}
		for _, err := range failures {
			if !errors.Is(err, server.ErrAlreadyListening) {
				t.Errorf("loser failed with %v, want ErrAlreadyListening", err)
			}
		}
		// The winner really owns the path: a dial reaches it.
		accepted := make(chan struct{})
		go func() {
			if c, err := winners[0].Accept(); err == nil {
				c.Close()
				close(accepted)
			}
		}()
		dialOK(t, path)
		<-accepted
		winners[0].Close()
	}
}

func TestListenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, base string) string // returns the socket path
		want    string
		keep    string // a path that must survive, relative to base
	}{
		{"regular file at the path", func(t *testing.T, base string) string {
			p := filepath.Join(base, "cd.sock")
			if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is not a socket", "cd.sock"},
		{"symlink at the path", func(t *testing.T, base string) string {
			p := filepath.Join(base, "cd.sock")
			if err := os.Symlink("/nonexistent", p); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is not a socket", "cd.sock"},
		{"directory is a symlink", func(t *testing.T, base string) string {
			if err := os.Mkdir(filepath.Join(base, "real"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(base, "real"), filepath.Join(base, "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "link", "cd.sock")
		}, "not a directory", "real"},
		{"directory is a file", func(t *testing.T, base string) string {
			if err := os.WriteFile(filepath.Join(base, "f"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(base, "f", "cd.sock")
		}, "not a directory", "f"},
		{"path too long", func(t *testing.T, base string) string {
			return filepath.Join(base, strings.Repeat("x", 110), "cd.sock")
		}, "CONNECTORD_SOCKET", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := shortDir(t)
			path := tt.prepare(t, base)
			ln, err := server.Listen(path)
			if err == nil {
				ln.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want it to mention %q", err, tt.want)
			}
			if tt.keep != "" {
				if _, err := os.Lstat(filepath.Join(base, tt.keep)); err != nil {
					t.Errorf("%s was removed: %v", tt.keep, err)
				}
			}
		})
	}
}

func TestListenDirectoryNotOurs(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := filepath.Join(shortDir(t), "theirs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen(filepath.Join(dir, "cd.sock"))
	if err == nil {
		ln.Close()
		t.Fatal("Listen used another user's directory")
	}
	if !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("got %v", err)
	}
	if got := mode(t, dir); got != fs.ModeDir|0o700 {
		t.Errorf("someone else's directory was changed to %v", got)
	}
}
