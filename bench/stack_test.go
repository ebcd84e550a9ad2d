package bench_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all" // registers the docker connector type, as the daemon does
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/ipc/server"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/store"
)

// stack is the daemon as `connectord serve` runs it: a file store, the
// config loaded through daemon.Reload, ipc/server on a Unix socket, with
// logs at the default level (info) into a discarding text handler, so the
// per-request level checks cost what they cost in production.
type stack struct {
	dir    string // short temporary directory holding everything below
	config string // config.toml
	sock   string
	d      *daemon.Daemon
	client *client.Client
}

// benchLogger is what serve builds (a text handler at info), writing
// nowhere.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// shortDir is a fresh directory with a short path: a Unix socket path must
// fit in 108 bytes and b.TempDir() includes the benchmark's name.
func shortDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "cdb")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// newDaemon writes config to a fresh directory and loads it into a new
// daemon with a file store, without serving it.
func newDaemon(tb testing.TB, config string) *stack {
	tb.Helper()
	dir, path := writeConfig(tb, config)
	return &stack{dir: dir, config: path, sock: filepath.Join(dir, "d.sock"), d: loadDaemon(tb, dir, path)}
}

// writeConfig writes config to config.toml in a fresh short directory.
func writeConfig(tb testing.TB, config string) (dir, path string) {
	tb.Helper()
	dir = shortDir(tb)
	path = filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	return dir, path
}

// loadDaemon is a daemon with a file store in dir that has loaded the
// config at path, as serve starts one.
func loadDaemon(tb testing.TB, dir, path string) *daemon.Daemon {
	tb.Helper()
	st, err := store.Open(filepath.Join(dir, "credentials.json"))
	if err != nil {
		tb.Fatal(err)
	}
	d := daemon.New(daemon.Options{Logger: benchLogger(), Store: st, ConfigPath: path, StorePath: st.Path(), Version: "bench"})
	if _, err := d.Reload(registry.Default, connectors.OSResolver{}); err != nil {
		tb.Fatal(err)
	}
	return d
}

// startStack is newDaemon plus ipc/server serving it on a socket; the
// server is stopped at cleanup.
func startStack(tb testing.TB, config string) *stack {
	tb.Helper()
	s := newDaemon(tb, config)
	ln, err := server.Listen(s.sock)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := server.New(s.d, server.Options{Logger: benchLogger()})
	go func() { done <- srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				tb.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Error("serve did not return")
		}
	})
	s.client = client.New(s.sock)
	return s
}

// host is the registry of connector i: every connector gets its own.
func host(i int) string { return fmt.Sprintf("r%05d.registry.example:5000", i) }

// configText is a config with n docker connectors, one registry host
// each. The password of connector 0 is pass0, so that a reload can
// change exactly one connector.
func configText(n int, pass0 string) string {
	var b strings.Builder
	b.Grow(n * 160)
	b.WriteString("version = 1\n")
	for i := range n {
		pass := fmt.Sprintf("pass%05d", i)
		if i == 0 {
			pass = pass0
		}
		fmt.Fprintf(&b, "\n[[connector]]\nname = \"c%05d\"\ntype = \"docker\"\nresource_id = %q\n[connector.config]\nusername = \"user%05d\"\npassword = %q\n",
			i, host(i), i, pass)
	}
	return b.String()
}
