// Package testenv is the test harness that starts real servers on loopback
// and finds real tools.
//
// Integration tests use it to run Debian's docker-registry (with htpasswd
// auth, TLS, or both, or behind docker/distribution's token server for
// token auth) on 127.0.0.1 and to locate the clients that talk to it
// (crane, oras, regctl, skopeo, podman, ...). A missing tool fails the run
// under CI=true and skips the test otherwise; either way the message names
// the command that installs it (.ci/install-deps).
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// InstallCommand is the command that installs every tool Tool looks for.
const InstallCommand = ".ci/install-deps"

// RunTimeout bounds every command started by Run.
const RunTimeout = 2 * time.Minute

// InCI reports whether the environment says this is a CI run (CI=true), in
// which case missing tools are failures rather than skips.
func InCI() bool { return os.Getenv("CI") == "true" }

// missing fails the test under CI=true and skips it otherwise.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("%s (CI=true: missing tools are failures)", msg)
	}
	t.Skipf("%s (skipping: set CI=true to make this a failure)", msg)
}

// Tool returns the absolute path of the executable name, found on PATH or in
// the Go bin directories ($GOBIN, each $GOPATH/bin, $HOME/go/bin; go itself
// is not run). When it is missing the test fails under CI=true and is
// skipped otherwise, naming the install command.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	dirs := goBinDirs()
	if !strings.ContainsRune(name, os.PathSeparator) {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if isExecutable(p) {
				return p
			}
		}
	}
	missing(t, "testenv: tool %q not found on PATH or in %s; install it with %s",
		name, strings.Join(dirs, ", "), InstallCommand)
	return ""
}

// goBinDirs lists where `go install` puts binaries, without running go.
func goBinDirs() []string {
	var dirs []string
	add := func(d string) {
		if d == "" || !filepath.IsAbs(d) {
			return
		}
		for _, have := range dirs {
			if have == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(os.Getenv("GOBIN"))
	for _, gp := range filepath.SplitList(os.Getenv("GOPATH")) {
		if gp != "" {
			add(filepath.Join(gp, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		add(filepath.Join(home, "go", "bin"))
	}
	return dirs
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// ShortTempDir returns a new 0700 directory with a short path, removed at
// cleanup. Unix socket paths must be shorter than 108 bytes, and t.TempDir
// paths (which embed the test name) often are not.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	base := os.TempDir()
	if len(base) > 32 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "ctd")
	if err != nil {
		t.Fatalf("testenv: short temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("testenv: removing %s: %v", dir, err)
		}
	})
	return dir
}

// Run runs name with args and returns its stdout, stderr and exit code. env
// is the complete environment of the process (nil means the test process's
// own); stdin, when not empty, is written to its standard input (otherwise
// it reads /dev/null). A non-zero exit is not a test failure: callers
// assert on code. The command is killed after RunTimeout (or shortly before
// the test's deadline, whichever is sooner); that, and a command that cannot
// be started at all, fail the test.
//
// Never put a secret in args: argv is visible to every process on the
// machine and ends up in failure messages. Pass secrets on stdin or in env.
func Run(t testing.TB, env []string, stdin string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	timeout := RunTimeout
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			if left := time.Until(d) - 5*time.Second; left > 0 && left < timeout {
				timeout = left
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	// A grandchild that keeps the pipes open must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)

	err := cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	if ctx.Err() != nil {
		t.Errorf("testenv: %s %s: killed after %v\nstderr:\n%s", name, strings.Join(args, " "), timeout, tail(stderr, 40))
		return stdout, stderr, -1
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return stdout, stderr, 0
	case errors.As(err, &exitErr):
		return stdout, stderr, exitErr.ExitCode()
	default:
		t.Fatalf("testenv: running %s: %v", name, err)
		return stdout, stderr, -1
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// KillWithTest makes the kernel kill cmd's process if the test process
// dies first (Linux; elsewhere it does nothing), so that a crashed or
// killed test run leaves no daemon behind. Call it before cmd.Start.
func KillWithTest(cmd *exec.Cmd) { setDeathSignal(cmd) }
