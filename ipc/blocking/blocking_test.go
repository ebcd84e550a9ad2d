//go:build unix

package blocking_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/blocking"
	"github.com/connectord/connectord/ipc/server"
)

type handlerFunc func(context.Context, *ipc.Request) *ipc.Response

func (f handlerFunc) Handle(ctx context.Context, r *ipc.Request) *ipc.Response { return f(ctx, r) }

func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "cdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func serve(t *testing.T, h handlerFunc, opts server.Options) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "run", "d.sock")
	ln, err := server.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(h, opts).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return path
}

func TestRoundTripAndErrors(t *testing.T) {
	t.Parallel()
	path := serve(t, func(_ context.Context, r *ipc.Request) *ipc.Response {
		switch r.ServerURL {
		case "known.example":
			return &ipc.Response{Username: "u", Secret: "s"}
		case "slow.example":
			time.Sleep(500 * time.Millisecond)
			return &ipc.Response{Username: "late"}
		}
		return &ipc.Response{Error: ipc.Errorf(ipc.CodeNotFound, "nothing for %s", r.ServerURL)}
	}, server.Options{})
	c := blocking.New(path)
	if c.Path() != path {
		t.Fatalf("Path() = %q", c.Path())
	}
	resp, err := c.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: "known.example"})
	if err != nil || resp.Username != "u" || resp.Secret != "s" {
		t.Fatalf("get = %+v, %v", resp, err)
	}
	_, err = c.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: "other.example"})
	if !errors.Is(err, ipc.ErrNotFound) {
		t.Fatalf("unknown = %v, want ErrNotFound", err)
	}
	// A context deadline bounds the exchange through SO_RCVTIMEO.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Do(ctx, &ipc.Request{Op: ipc.OpGet, ServerURL: "slow.example"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow answer past the deadline = %v, want DeadlineExceeded", err)
	}
}

// A refused peer reads the daemon's reason, not a connection reset.
func TestForbiddenAnswerIsRead(t *testing.T) {
	t.Parallel()
	path := serve(t, func(context.Context, *ipc.Request) *ipc.Response { return &ipc.Response{} },
		server.Options{AllowUID: func(uint32) bool { return false }})
	_, err := blocking.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
	if !errors.Is(err, ipc.ErrForbidden) {
		t.Fatalf("got %v, want ErrForbidden", err)
	}
}

func TestNotRunning(t *testing.T) {
	t.Parallel()
	dir := shortDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: a crashed daemon
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"missing":     filepath.Join(dir, "none.sock"),
		"missing dir": filepath.Join(dir, "nodir", "x.sock"),
		"stale":       stale,
		"regular":     regular,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := blocking.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
			if !ipc.IsNotRunning(err) {
				t.Fatalf("got %v, want a not-running DialError", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "connectord start") {
				t.Errorf("message %q does not name the socket and how to start it", err)
			}
		})
	}
	long := "/tmp/" + strings.Repeat("x", ipc.MaxSocketPath)
	if _, err := blocking.New(long).Do(t.Context(), &ipc.Request{Op: ipc.OpPing}); err == nil || !strings.Contains(err.Error(), "CONNECTORD_SOCKET") {
		t.Fatalf("over-long path: %v", err)
	}
}

// Several processes' worth of calls at once: each gets its own answer.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	path := serve(t, func(_ context.Context, r *ipc.Request) *ipc.Response {
		return &ipc.Response{Username: r.ServerURL}
	}, server.Options{})
	c := blocking.New(path)
	errs := make(chan error, 32)
	for i := range 32 {
		go func() {
			host := string(rune('a'+i%26)) + ".example"
			resp, err := c.Do(context.Background(), &ipc.Request{Op: ipc.OpGet, ServerURL: host})
			if err == nil && resp.Username != host {
				err = errors.New("crossed answers: " + resp.Username + " for " + host)
			}
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
