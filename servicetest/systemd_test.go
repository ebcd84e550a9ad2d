//go:build linux

package servicetest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	units "github.com/connectord/connectord/contrib/systemd"
	"github.com/connectord/connectord/internal/testenv"
)

// verifyUnits runs `systemd-analyze verify --user` on files and fails on
// any complaint: it exits 0 even for unknown keys and bad values, which
// it only prints.
func verifyUnits(t *testing.T, w *world, files ...string) {
	t.Helper()
	sa := testenv.Tool(t, "systemd-analyze")
	// It needs XDG_RUNTIME_DIR to be an existing 0700 directory (FIELD-NOTES).
	out, errOut, code := run(t, w.env, "", sa, append([]string{"verify", "--user"}, files...)...)
	if code != 0 || strings.TrimSpace(out+errOut) != "" {
		t.Errorf("systemd-analyze verify --user %s: exit %d\n%s%s", strings.Join(files, " "), code, out, errOut)
	}
}

func TestUnitsVerify(t *testing.T) {
	t.Parallel()

	t.Run("shipped", func(t *testing.T) {
		t.Parallel()
		// As shipped, ExecStart runs %h/.local/bin/connectord.
		w := newWorld(t)
		home := filepath.Join(w.dir, "home")
		if err := os.MkdirAll(filepath.Join(home, ".local", "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(connectord(), filepath.Join(home, ".local", "bin", "connectord")); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(w.dir, "units")
		for _, name := range []string{units.Service, units.Socket, units.SandboxDropIn} {
			data, err := units.File(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		verifyUnits(t, w, filepath.Join(dir, units.Service), filepath.Join(dir, units.Socket))
	})

	for _, sandbox := range []bool{false, true} {
		t.Run("installed/sandbox="+strconv.FormatBool(sandbox), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			args := []string{"install-service"}
			if sandbox {
				args = append(args, "--sandbox")
			}
			out, errOut, code := run(t, w.env, "", connectord(), args...)
			if code != 0 {
				t.Fatalf("install-service: exit %d\n%s%s", code, out, errOut)
			}
			dir := filepath.Join(w.dir, "config", "systemd", "user")
			svc := filepath.Join(dir, units.Service)
			if !strings.Contains(out, "wrote "+svc) || !strings.Contains(out, "systemctl --user enable --now connectord.socket") {
				t.Errorf("install-service output:\n%s", out)
			}
			data, err := os.ReadFile(svc)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "\nExecStart="+connectord()+" serve\n") {
				t.Errorf("ExecStart does not run %s:\n%s", connectord(), data)
			}
			_, err = os.Stat(filepath.Join(dir, units.SandboxDropIn))
			if sandbox != (err == nil) {
				t.Errorf("sandbox drop-in present: %v, want %v", err == nil, sandbox)
			}
			if sandbox {
				// ReadWritePaths= must exist at start; install-service made it.
				if fi, err := os.Stat(filepath.Join(w.dir, "home", ".local", "state", "connectord")); err != nil || fi.Mode().Perm() != 0o700 {
					t.Errorf("state directory: %v", err)
				}
			}
			verifyUnits(t, w, svc, filepath.Join(dir, units.Socket))

			// Again: nothing to write.
			out, _, code = run(t, w.env, "", connectord(), args...)
			if code != 0 || strings.Contains(out, "wrote") || !strings.Contains(out, "unchanged "+svc) {
				t.Errorf("second install-service: exit %d\n%s", code, out)
			}
		})
	}

	t.Run("dry run", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		dir := filepath.Join(w.dir, "elsewhere")
		out, errOut, code := run(t, w.env, "", connectord(), "install-service", "--dry-run", "--unit-dir", dir, "--prefix", filepath.Dir(binDir))
		if code == 0 {
			t.Errorf("--prefix without DIR/bin/connectord succeeded:\n%s", out)
		} else if !strings.Contains(errOut, filepath.Join(filepath.Dir(binDir), "bin", "connectord")) {
			t.Errorf("--prefix error does not name the missing binary:\n%s", errOut)
		}
		out, errOut, code = run(t, w.env, "", connectord(), "install-service", "--dry-run", "--unit-dir", dir)
		if code != 0 || !strings.Contains(out, "ExecStart="+connectord()+" serve") || !strings.Contains(out, "ListenStream=%t/connectord/connectord.sock") {
			t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("dry run wrote %s", dir)
		}
	})
}

// activatedServe starts `connectord serve` as systemd would for
// connectord.socket: ln's descriptor as fd 3, LISTEN_FDS=1 and LISTEN_PID
// set to the daemon's own pid, which sh knows as $$ and keeps across exec.
func activatedServe(t *testing.T, w *world, ln *net.UnixListener) *daemon {
	t.Helper()
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its copy
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" serve --config "$1" --store "$2"`, connectord(), w.cfg, w.store)
	cmd.Env = w.with("LISTEN_FDS=1", "LISTEN_FDNAMES=connectord.socket")
	cmd.ExtraFiles = []*os.File{f}
	d := startDaemon(t, cmd)
	waitAnswer(t, w.sock, d)
	return d
}

func TestSocketActivation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeConfig(t, connectorTOML("lab", "lab.example:5000", "labuser", "lab-pass-4Rt"))
	// The test plays systemd: it owns the socket (socket unit: mode 0600
	// in a 0700 directory) and keeps it open throughout.
	if err := os.MkdirAll(filepath.Dir(w.sock), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: w.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(true)
	defer ln.Close()

	helperGet := func(stage string) {
		t.Helper()
		out, errOut, code := run(t, w.env, "lab.example:5000", helper(), "get")
		if code != 0 || !strings.Contains(out, `"Username":"labuser"`) || !strings.Contains(out, "lab-pass-4Rt") {
			t.Errorf("%s: helper get: exit %d, stderr %s", stage, code, errOut)
		}
	}

	d := activatedServe(t, w, ln)
	helperGet("activated")
	if log := d.log.String(); !strings.Contains(log, "socket_activated=true") {
		t.Errorf("the daemon did not take systemd's socket:\n%s", log)
	}

	// A daemon started by hand finds the socket live and leaves at once,
	// with one line.
	_, errOut, code := run(t, w.env, "", connectord(), "serve", "--config", w.cfg, "--store", w.store)
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "already listening") {
		t.Errorf("second daemon: exit %d, want a failure with one line; stderr:\n%s", code, errOut)
	}

	// Stopping leaves systemd's socket file: the next connection starts
	// the daemon again.
	if code := d.stop(t); code != 0 {
		t.Fatalf("activated daemon exited %d:\n%s", code, d.log)
	}
	if fi, err := os.Stat(w.sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("the daemon removed systemd's socket at shutdown: %v", err)
	}
	activatedServe(t, w, ln)
	helperGet("re-activated")
}

// notifications is the test's end of NOTIFY_SOCKET.
type notifications struct {
	conn *net.UnixConn
}

func listenNotify(t *testing.T, path string) *notifications {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifications{conn: c}
}

// next returns the next datagram's states as a map.
func (n *notifications) next(t *testing.T, what string) map[string]string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	k, err := n.conn.Read(buf)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	states := map[string]string{}
	for _, line := range strings.Split(string(buf[:k]), "\n") {
		key, val, _ := strings.Cut(line, "=")
		states[key] = val
	}
	return states
}

func TestNotify(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.writeConfig(t, connectorTOML("lab", "lab.example:5000", "labuser", "lab-pass-8Yu"))
	n := listenNotify(t, filepath.Join(w.dir, "notify.sock"))
	d := w.serve(t, "NOTIFY_SOCKET="+filepath.Join(w.dir, "notify.sock"))

	if s := n.next(t, "READY=1"); s["READY"] != "1" || s["STATUS"] != "1 connector" {
		t.Fatalf("first notification %v, want READY=1 with STATUS=1 connector", s)
	}

	// SIGHUP (what ExecReload sends): RELOADING=1 with MONOTONIC_USEC,
	// then READY=1.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s := n.next(t, "RELOADING=1")
	if s["RELOADING"] != "1" {
		t.Fatalf("after SIGHUP: %v, want RELOADING=1", s)
	}
	if usec, err := strconv.ParseInt(s["MONOTONIC_USEC"], 10, 64); err != nil || usec <= 0 {
		t.Errorf("RELOADING=1 without a valid MONOTONIC_USEC: %v", s)
	}
	if s := n.next(t, "READY=1 after the reload"); s["READY"] != "1" || s["STATUS"] != "1 connector" {
		t.Errorf("after the reload: %v, want READY=1, STATUS=1 connector", s)
	}

	// A rejected config: still READY (the old one serves), with a STATUS
	// that says so and quotes nothing from the file.
	if err := os.WriteFile(w.cfg, []byte("version = 1\npassword = \"leak-me-3Pq\" [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var status string
	for i := 0; i < 6 && !strings.HasPrefix(status, "config rejected"); i++ {
		// The file watcher may reload too; skip its RELOADING/READY pairs.
		s := n.next(t, "the rejected reload")
		status = s["STATUS"]
	}
	if !strings.HasPrefix(status, "config rejected") || !strings.Contains(status, "still serving 1 connector") || strings.Contains(status, "leak-me") {
		t.Errorf("STATUS after a rejected config: %q", status)
	}

	// SIGTERM: STOPPING=1, then a clean exit.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		s := n.next(t, "STOPPING=1")
		if s["STOPPING"] == "1" {
			break
		}
	}
	if code := d.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}
