package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/ipc/server"
)

// shortDir returns a fresh directory with a short path: a Unix socket path
// must fit in 108 bytes, and t.TempDir() includes the test's name.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// HandlerFunc adapts a function to server.Handler.
type HandlerFunc func(ctx context.Context, req *ipc.Request) *ipc.Response

func (f HandlerFunc) Handle(ctx context.Context, req *ipc.Request) *ipc.Response { return f(ctx, req) }

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a Server serving on a fresh socket.
type running struct {
	path   string
	client *client.Client
	logs   *logBuffer
	stop   context.CancelFunc
	done   chan struct{} // closed when Serve returns
	err    error         // Serve's result, once done is closed
}

// wait stops the server and returns Serve's result.
func (r *running) wait(t testing.TB) error {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
		return r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// start serves h on a fresh socket created by server.Listen, with debug
// logs captured. The server is stopped at cleanup.
func start(t testing.TB, h server.Handler, opts server.Options) *running {
	t.Helper()
	path := filepath.Join(shortDir(t), "cd.sock")
	ln, err := server.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{path: path, client: client.New(path), logs: logs, stop: cancel, done: make(chan struct{})}
	srv := server.New(h, opts)
	go func() {
		r.err = srv.Serve(ctx, ln)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}
