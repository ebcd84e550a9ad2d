package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

func connectorTOML(name, host, pass string) string {
	return fmt.Sprintf("[[connector]]\nname = %q\ntype = \"docker\"\nresource_id = %q\n[connector.config]\nusername = \"u-%s\"\npassword = %q\n\n", name, host, name, pass)
}

// syncBuffer collects the daemon's log from its goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveInProcess runs `connectord serve` in this process until the test
// ends and returns its socket.
func serveInProcess(t *testing.T, cfgPath string) (string, *syncBuffer) {
	t.Helper()
	dir := testenv.ShortTempDir(t)
	sock := filepath.Join(dir, "run", "c.sock")
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{ctx: ctx, stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- e.run([]string{"serve", "--config", cfgPath, "--socket", sock, "--store", filepath.Join(dir, "state", "c.json"), "--log-level", "debug"})
	}()
	c := client.New(sock)
	for i := 0; ; i++ {
		if _, err := c.Do(ctx, &ipc.Request{Op: ipc.OpPing}); err == nil {
			break
		}
		if i > 500 {
			t.Fatalf("daemon did not start:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d:\n%s", code, logs)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind after shutdown: %v", err)
		}
	})
	return sock, logs
}

func get(ctx context.Context, c *client.Client, host string) (*ipc.Response, error) {
	return c.Do(ctx, &ipc.Request{Op: ipc.OpGet, ServerURL: host})
}

// waitFor polls until host is answered with want, for at most 1 s after
// the write: the bound for a new connector.
func waitFor(t *testing.T, c *client.Client, host, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		r, err := get(t.Context(), c, host)
		if err == nil && r.Secret == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not answered with the new secret within 1s of the write (last: %v %v)", host, r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	// Kubernetes mounts a ConfigMap as config.toml -> ..data/config.toml,
	// ..data -> ..<timestamp>; an update re-points ..data atomically.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	base := connectorTOML("steady", "steady.example", "steady-pass")
	if err := os.WriteFile(cfgPath, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, logs := serveInProcess(t, cfgPath)
	c := client.New(sock)

	// The load: gets for the steady connector in a loop, none may fail.
	ctx, stop := context.WithCancel(context.Background())
	var gets, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r, err := get(ctx, c, "steady.example")
				if ctx.Err() != nil {
					return
				}
				gets.Add(1)
				if err != nil || r.Secret != "steady-pass" {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %v", r, err))
				}
			}
		}()
	}

	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	renameOver := func(text string) {
		t.Helper()
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}

	// 1. Edited in place.
	write(base + connectorTOML("a", "a.example", "a-1"))
	waitFor(t, c, "a.example", "a-1")
	// 2. Renamed over (vim, sed -i, atomic writers).
	renameOver(base + connectorTOML("a", "a.example", "a-2"))
	waitFor(t, c, "a.example", "a-2")
	// 3. Broken: nothing served changes.
	write(base + connectorTOML("a", "a.example", "a-3") + "this is = not [ toml")
	time.Sleep(300 * time.Millisecond)
	if r, err := get(t.Context(), c, "a.example"); err != nil || r.Secret != "a-2" {
		t.Fatalf("a broken config changed what is served: %v %v", r, err)
	}
	write(base + "[[connector]]\nname = \"bad\"\ntype = \"no-such-type\"\n")
	time.Sleep(300 * time.Millisecond)
	if r, err := get(t.Context(), c, "a.example"); err != nil || r.Secret != "a-2" {
		t.Fatalf("an invalid config changed what is served: %v %v", r, err)
	}
	var st struct {
		LastLoad struct {
			OK    bool
			Error string
		} `json:"last_load"`
	}
	e := &env{ctx: t.Context(), getenv: func(string) string { return "" }}
	if err := e.call(sock, &ipc.Request{Op: ipc.OpStatus}, &st); err != nil || st.LastLoad.OK || !strings.Contains(st.LastLoad.Error, `unknown connector type "no-such-type"`) {
		t.Fatalf("status does not show the rejected config: %+v %v", st, err)
	}
	// 4. Symlink swap, as a ConfigMap update.
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	for i, text := range []string{base + connectorTOML("b", "b.example", "b-1"), base + connectorTOML("b", "b.example", "b-2")} {
		ts := filepath.Join(dir, fmt.Sprintf("..2026_%d", i))
		if err := os.Mkdir(ts, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ts, "config.toml"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Base(ts), filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := os.Symlink("..data/config.toml", cfgPath); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, c, "b.example", fmt.Sprintf("b-%d", i+1))
	}
	if _, err := get(t.Context(), c, "a.example"); err == nil {
		t.Fatal("removed connector a still answers")
	}

	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d gets failed during reloads; first: %v", n, gets.Load(), firstFailure.Load())
	}
	if gets.Load() < 100 {
		t.Fatalf("only %d gets ran: the load did not overlap the reloads", gets.Load())
	}
	if strings.Contains(logs.String(), "steady-pass") || strings.Contains(logs.String(), "a-2") {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
}

// A secret given as { file = ... } is re-read when that file changes,
// also when the file lives outside the config's directory and is
// replaced by rename (as secret managers and kubelet do).
func TestReloadRereadsSecretFiles(t *testing.T) {
	t.Parallel()
	cfgDir, secretDir := t.TempDir(), t.TempDir()
	secretPath := filepath.Join(secretDir, "password")
	if err := os.WriteFile(secretPath, []byte("first-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(cfgDir, "config.toml")
	cfg := fmt.Sprintf("[[connector]]\nname = \"f\"\ntype = \"docker\"\nresource_id = \"f.example\"\n[connector.config]\nusername = \"u\"\npassword = { file = %q }\n", secretPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, logs := serveInProcess(t, cfgPath)
	c := client.New(sock)
	waitFor(t, c, "f.example", "first-secret")

	tmp := secretPath + ".new"
	if err := os.WriteFile(tmp, []byte("second-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, secretPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "f.example", "second-secret")

	// Written in place, too.
	if err := os.WriteFile(secretPath, []byte("third-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c, "f.example", "third-secret")

	// A vanished secret file is a config error: the last good secret
	// keeps being served and status says why.
	if err := os.Remove(secretPath); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if r, err := get(t.Context(), c, "f.example"); err != nil || r.Secret != "third-secret" {
		t.Fatalf("after the secret file vanished: %v %v", r, err)
	}
	if !strings.Contains(logs.String(), "reading "+secretPath+": no such file or directory") {
		t.Errorf("the daemon did not log why the reload failed:\n%s", logs)
	}
	for _, s := range []string{"first-secret", "second-secret", "third-secret"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("secret %q reached the log", s)
		}
	}
}
