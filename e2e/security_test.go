package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	ipcclient "github.com/connectord/connectord/ipc/client"
)

// nobody is the second, real uid the peer checks are tried with.
const nobody = "65534"

// asNobody runs the helper as uid/gid 65534 through setpriv, with the
// binary copied where that user can execute it.
func helperAsNobody(t *testing.T, socket, stdin string) result {
	t.Helper()
	setpriv := testenv.Tool(t, "setpriv")
	dir, err := os.MkdirTemp("", "cd-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(binDir, helperName))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, helperName)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	env := setEnv(cleanEnv(), "CONNECTORD_SOCKET", socket)
	env = setEnv(env, "CONNECTORD_NO_AUTOSTART", "1")
	env = setEnv(env, "HOME", dir)
	return run(t, runOpts{env: env, stdin: stdin, secretStdout: true}, setpriv,
		"--reuid="+nobody, "--regid="+nobody, "--clear-groups", "--", bin, "get")
}

// Another uid gets nothing: first the file modes stop it (the socket is
// 0600 in a 0700 directory); with the modes opened up by hand, the
// daemon's SO_PEERCRED check still refuses it.
func TestOtherUIDIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		skipOrFail(t, "switching to a second uid needs root")
	}
	t.Parallel()
	pass := newPassword(t, "labuser")
	d := startDaemon(t, daemonOpts{connectors: []connectorConf{{name: "lab", resourceID: "sec.example:5000", username: "labuser", password: pass}}})

	sockDir := filepath.Dir(d.socket)
	for path, want := range map[string]os.FileMode{d.socket: os.ModeSocket | 0o600, sockDir: os.ModeDir | 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
		}
	}

	r := helperAsNobody(t, d.socket, "sec.example:5000\n")
	if r.code == 0 || strings.Contains(r.stdout, pass) || !strings.Contains(r.output(), "permission denied") {
		t.Fatalf("uid %s through the file modes: want permission denied and nothing served:\n%s", nobody, r)
	}

	// Open the modes: only the daemon's own check is left.
	for _, p := range []string{filepath.Dir(sockDir), sockDir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(d.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	r = helperAsNobody(t, d.socket, "sec.example:5000\n")
	if r.code == 0 || strings.Contains(r.stdout, pass) || strings.Contains(r.stdout, "labuser") {
		t.Fatalf("uid %s was served:\n%s", nobody, r)
	}
	if !strings.Contains(r.stdout, "uid "+nobody) {
		t.Errorf("the refusal does not name the uid:\n%s", r)
	}
	if !strings.Contains(d.log(), "uid="+nobody) {
		t.Errorf("the daemon did not log the refused uid:\n%s", d.log())
	}
	// Our own uid is still served.
	c := newClient(t, d.socket, dockerConf{credsStore: true})
	if got := c.getCreds("sec.example:5000"); got.Secret != pass {
		t.Fatal("own uid no longer served")
	}
}

// Kill -9 during a stream of stores: after a restart every acknowledged
// store is there and the store file parses.
func TestKillDuringStores(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, daemonOpts{})
	cl := ipcclient.New(d.socket)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				host := fmt.Sprintf("w%d-%d.example", w, i)
				secret := fmt.Sprintf("s-%d-%d", w, i)
				_, err := cl.Do(ctx, &ipc.Request{Op: ipc.OpStore, ServerURL: host, Username: "u", Secret: secret})
				if err != nil {
					return // the daemon died mid-stream: unacknowledged
				}
				mu.Lock()
				acked[host] = secret
				n := len(acked)
				mu.Unlock()
				if n == 60 {
					cancel()
				}
			}
		}()
	}
	// Kill while the writers are still going.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 40 {
			break
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	d.crash(t)
	cancel()
	wg.Wait()

	b, err := os.ReadFile(d.store)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk struct {
		Version     int                        `json:"version"`
		Credentials map[string]json.RawMessage `json:"credentials"`
	}
	if err := json.Unmarshal(b, &onDisk); err != nil || onDisk.Version != 1 {
		t.Fatalf("store file does not parse after kill -9: %v", err)
	}

	d2 := startDaemon(t, daemonOpts{store: d.store, socket: d.socket})
	if strings.Contains(d2.log(), "corrupt") {
		t.Fatalf("restarted daemon found the store corrupt:\n%s", d2.log())
	}
	cl2 := ipcclient.New(d2.socket)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 40 {
		t.Fatalf("only %d stores were acknowledged", len(acked))
	}
	for host, want := range acked {
		r, err := cl2.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: host})
		if err != nil || r.Secret != want {
			t.Errorf("acknowledged store of %s lost after kill -9: %v %v", host, r, err)
		}
	}
}

// A corrupt store file: the daemon starts, says what is wrong, keeps a
// copy of the bad file, and still serves the config connectors.
func TestCorruptStore(t *testing.T) {
	t.Parallel()
	pass := newPassword(t, "labuser")
	storePath := filepath.Join(t.TempDir(), "connectord", "credentials.json")
	garbage := `{"version":1,"credentials":{"a.example":{"username":"u","secret":"x"` // truncated
	writeFile(t, storePath, garbage)

	d := startDaemon(t, daemonOpts{store: storePath, connectors: []connectorConf{{name: "lab", resourceID: "lab.example", username: "labuser", password: pass}}})
	c := newClient(t, d.socket, dockerConf{credsStore: true})
	if got := c.getCreds("lab.example"); got.Secret != pass {
		t.Fatalf("config connector not served with a corrupt store")
	}
	log := d.log()
	if !strings.Contains(log, "credential store was corrupt") || !strings.Contains(log, "backup=") {
		t.Fatalf("the daemon did not say what was wrong:\n%s", log)
	}
	matches, _ := filepath.Glob(storePath + ".corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("backup of the bad file: %v", matches)
	}
	if b, _ := os.ReadFile(matches[0]); string(b) != garbage {
		t.Fatalf("the backup does not hold the bad file's bytes")
	}
	// And the store works again.
	mustSucceed(t, c.helper("store", `{"ServerURL":"new.example","Username":"u","Secret":"s"}`))
	if got := c.getCreds("new.example"); got.Secret != "s" {
		t.Fatal("store after recovery")
	}
}

// A full disk or a read-only state directory on store: a clear error,
// and nothing already stored is lost. The daemon runs in its own mount
// namespace with a tiny tmpfs (full disk) or a read-only bind mount
// (read-only state) over its state directory.
func TestStoreOnFullOrReadOnlyDisk(t *testing.T) {
	if os.Getuid() != 0 {
		skipOrFail(t, "mount namespaces need root")
	}
	unshare := testenv.Tool(t, "unshare")
	// The read-only case starts from a store that already holds one
	// credential; the full-disk case stores it first.
	seed := `{"version":1,"credentials":{"first.example":{"username":"u","secret":"first-secret","updated_at":"2026-12-01T00:00:00Z"}}}`
	for _, tc := range []struct {
		name, mount, wantErr string
	}{
		{"full disk", `mount -n -t tmpfs -o size=64k,mode=0700 tmpfs "$STATE"`, "no space left on device"},
		{"read-only", `mount -n -t tmpfs -o mode=0700 tmpfs "$STATE" && mkdir -m 0700 "$STATE/connectord" && cp "$SEED" "$STORE" && mount -n -o remount,ro "$STATE"`, "read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := testenv.ShortTempDir(t)
			state := mkdir(t, filepath.Join(dir, "state"))
			store := filepath.Join(state, "connectord", "credentials.json")
			socket := filepath.Join(dir, "c.sock")
			logPath := filepath.Join(dir, "daemon.log")
			cfg := writeFile(t, filepath.Join(dir, "etc", "config.toml"), "version = 1\n")
			seedPath := writeFile(t, filepath.Join(dir, "seed.json"), seed)
			script := `set -e; mount --make-rprivate /; ` + tc.mount + `
exec "$BIN" serve --config "$CFG" --socket "$SOCK" --store "$STORE" >"$LOG" 2>&1`
			cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", script)
			cmd.Env = append(cleanEnv(), "STATE="+state, "STORE="+store, "SOCK="+socket, "LOG="+logPath, "CFG="+cfg,
				"BIN="+filepath.Join(binDir, "connectord"), "SEED="+seedPath)
			setDeathSignal(cmd)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
				b, _ := os.ReadFile(logPath)
				record(t.Name()+": daemon log", string(b))
			})
			c := newClient(t, socket, dockerConf{credsStore: true})
			waitAnswering(t, c, socket, logPath)

			if tc.name == "full disk" {
				mustSucceed(t, c.helper("store", `{"ServerURL":"first.example","Username":"u","Secret":"first-secret"}`))
			}
			var r result
			big := strings.Repeat("x", 8<<10)
			for i := range 20 {
				r = c.helper("store", fmt.Sprintf(`{"ServerURL":"h%d.example","Username":"u","Secret":%q}`, i, big))
				if r.code != 0 {
					break
				}
			}
			if r.code == 0 {
				t.Fatalf("stores never failed on a %s state directory", tc.name)
			}
			if !strings.Contains(r.stdout, tc.wantErr) || !strings.Contains(r.stdout, "storing credentials for") {
				t.Errorf("unclear error for a %s state directory:\n%s", tc.name, r)
			}
			// Nothing already stored is lost: served now, and on disk.
			if got := c.getCreds("first.example"); got.Secret != "first-secret" {
				t.Fatal("first credential lost")
			}
			// The daemon's own view of its state directory.
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/root%s", cmd.Process.Pid, store))
			if err != nil {
				t.Fatal(err)
			}
			var onDisk struct {
				Credentials map[string]json.RawMessage `json:"credentials"`
			}
			if err := json.Unmarshal(b, &onDisk); err != nil || onDisk.Credentials["first.example"] == nil {
				t.Fatalf("store file after the failed write: %v, %d entries", err, len(onDisk.Credentials))
			}
		})
	}
}

// waitAnswering polls `connectord status` until the daemon answers.
func waitAnswering(t *testing.T, c *client, socket, logPath string) {
	t.Helper()
	for i := 0; ; i++ {
		if c.connectord("status", "--socket", socket).code == 0 {
			return
		}
		if i > 1500 {
			b, _ := os.ReadFile(logPath)
			t.Fatalf("daemon never answered on %s; log:\n%s", socket, b)
		}
	}
}

// A flood of idle connections and a client that dribbles one byte at a
// time, both from one process (this test), do not stall another
// process's get: the helper's get goes through while they hold their
// connections, and the dribbler is cut off at the read deadline.
func TestFloodAndSlowClientDoNotStallGets(t *testing.T) {
	t.Parallel()
	pass := newPassword(t, "labuser")
	d := startDaemon(t, daemonOpts{connectors: []connectorConf{{name: "lab", resourceID: "flood.example", username: "labuser", password: pass}}})

	dribbler, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer dribbler.Close()
	dribbled := make(chan error, 1)
	go func() {
		for _, b := range []byte(`{"v":1,"op":"list"}` + "\n") {
			if _, err := dribbler.Write([]byte{b}); err != nil {
				dribbled <- err
				return
			}
			time.Sleep(time.Second)
		}
		dribbled <- nil
	}()
	// Admitted first, the dribbler holds a slot until the read deadline.
	time.Sleep(100 * time.Millisecond)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 300 { // more than the daemon's 256 connection slots
		c, err := net.Dial("unix", d.socket)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}

	c := newClient(t, d.socket, dockerConf{credsStore: true})
	for range 5 {
		if got := c.getCreds("flood.example"); got.Secret != pass {
			t.Fatal("wrong credential during the flood")
		}
	}
	// The dribbler never completes its request: the daemon cuts it off.
	select {
	case err := <-dribbled:
		if err == nil {
			t.Fatal("a one-byte-a-second client was served to the end")
		}
		if !strings.Contains(d.log(), "no complete request in time") {
			t.Errorf("the dribbler was not cut off by the read deadline:\n%s", d.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the dribbling client was never cut off")
	}
	if !strings.Contains(d.log(), "too many connections from one process") {
		t.Errorf("the daemon did not log the per-process cap:\n%s", d.log())
	}
}
