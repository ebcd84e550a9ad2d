//go:build linux

package servicetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// binDir holds connectord and docker-credential-connector, built from
// this repository by TestMain.
var binDir string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "connectord-servicetest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+"/", "../cmd/connectord", "../cmd/docker-credential-connector")
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "servicetest: go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

func connectord() string { return filepath.Join(binDir, "connectord") }
func helper() string     { return filepath.Join(binDir, "docker-credential-connector") }

// world is one test's private environment: HOME, XDG dirs, PATH with the
// built binaries first, and a socket of its own. Children get exactly
// env, never the test process's environment.
type world struct {
	dir, sock, cfg, store string
	env                   []string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := testenv.ShortTempDir(t)
	w := &world{
		dir:   dir,
		sock:  filepath.Join(dir, "run", "connectord", "connectord.sock"),
		cfg:   filepath.Join(dir, "connectord.toml"),
		store: filepath.Join(dir, "state", "credentials.json"),
	}
	for _, d := range []string{"home", "run", "config", "docker"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.env = []string{
		"PATH=" + binDir + ":" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"XDG_RUNTIME_DIR=" + filepath.Join(dir, "run"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"DOCKER_CONFIG=" + filepath.Join(dir, "docker"),
		"CONNECTORD_SOCKET=" + w.sock,
		"CONNECTORD_NO_AUTOSTART=1",
	}
	return w
}

func (w *world) with(kv ...string) []string { return append(append([]string{}, w.env...), kv...) }

func (w *world) writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(w.cfg, []byte("version = 1\n"+text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func connectorTOML(name, host, user, pass string) string {
	return fmt.Sprintf("[[connector]]\nname = %q\ntype = \"docker\"\nresource_id = %q\n[connector.config]\nusername = %q\npassword = %q\n\n", name, host, user, pass)
}

// run runs a command to completion in env and returns what it printed.
func run(t *testing.T, env []string, stdin, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return testenv.Run(t, env, stdin, name, args...)
}

// daemon is a `connectord serve` child process.
type daemon struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
	err  error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon starts cmd (a connectord serve, possibly wrapped) and stops
// it with SIGTERM when the test ends, failing the test if it did not
// exit 0 then.
func startDaemon(t *testing.T, cmd *exec.Cmd) *daemon {
	t.Helper()
	d := &daemon{cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.log, d.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		if code := d.stop(t); code != 0 {
			t.Errorf("the daemon exited %d at shutdown:\n%s", code, d.log)
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
	})
	return d
}

// stop sends SIGTERM (if it is still running) and returns the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
	default:
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
	}
	return d.wait(t)
}

// wait waits for the daemon to exit and returns its exit code.
func (d *daemon) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("the daemon did not exit within 30s")
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		return -1
	}
	return 0
}

// serve starts `connectord serve` for w and waits until it answers.
func (w *world) serve(t *testing.T, extraEnv ...string) *daemon {
	t.Helper()
	cmd := exec.Command(connectord(), "serve", "--config", w.cfg, "--socket", w.sock, "--store", w.store)
	cmd.Env = w.with(extraEnv...)
	d := startDaemon(t, cmd)
	waitAnswer(t, w.sock, d)
	return d
}

// waitAnswer polls the socket until the daemon answers a ping.
func waitAnswer(t *testing.T, sock string, d *daemon) {
	t.Helper()
	c := client.New(sock)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Do(ctx, &ipc.Request{Op: ipc.OpPing})
		cancel()
		if err == nil {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("the daemon exited before answering (%v):\n%s", d.err, d.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not answer on %s within 30s (%v):\n%s", sock, err, d.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
