//go:build linux

package exec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/connectors"
	cexec "github.com/connectord/connectord/connectors/exec"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// These tests run the real binaries: `connectord serve` with an exec
// connector, docker-credential-connector as crane's credsStore, Debian's
// docker-registry with htpasswd auth, and the test issuer
// (testdata/issuer), which mints a new user on every call and removes
// expired ones from the registry's htpasswd file, so the registry itself
// refuses an expired credential.

func needBinaries(t *testing.T) {
	t.Helper()
	if binDir == "" {
		t.Skip("integration test: needs the binaries TestMain builds (not with -short)")
	}
}

// daemonProc is a running `connectord serve`.
type daemonProc struct {
	socket  string
	logPath string
	pid     int
}

// startDaemon writes cfg and serves it on a socket in a short temp dir,
// with a private store and XDG directories. Cleanup stops it with SIGTERM.
func startDaemon(t *testing.T, cfg string) *daemonProc {
	t.Helper()
	dir := testenv.ShortTempDir(t)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{socket: filepath.Join(dir, "s.sock"), logPath: filepath.Join(dir, "daemon.log")}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(filepath.Join(binDir, "connectord"), "serve", "--config", cfgPath, "--socket", d.socket,
		"--store", filepath.Join(dir, "store.json"), "--log-level", "debug")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_RUNTIME_DIR=" + dir,
		"XDG_CONFIG_HOME=" + dir, "XDG_STATE_HOME=" + dir}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(d.logPath)
			t.Logf("daemon log %s (last 60 lines):\n%s", d.logPath, lastLines(string(b), 60))
		}
	})
	c := client.New(d.socket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Do(ctx, &ipc.Request{Op: ipc.OpPing})
		cancel()
		if err == nil {
			return d
		}
		select {
		case <-done:
			b, _ := os.ReadFile(d.logPath)
			t.Fatalf("connectord serve exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("connectord serve did not answer within 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(len(l)-n, 0):], "\n")
}

func (d *daemonProc) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// clientEnv is the environment of crane and the helper: our helper first
// on PATH, crane's credsStore pointing at it, the daemon's socket, and no
// autostart (a second daemon would hide a dead first one).
func clientEnv(t *testing.T, d *daemonProc) []string {
	t.Helper()
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore":"connector"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_CONFIG=") || strings.HasPrefix(kv, "CONNECTORD_") || strings.HasPrefix(kv, "PATH=")
	})
	return append(env, "PATH="+binDir+":"+os.Getenv("PATH"), "DOCKER_CONFIG="+cfgDir,
		"CONNECTORD_SOCKET="+d.socket, "CONNECTORD_NO_AUTOSTART=1")
}

// helperGet runs `docker-credential-connector get` as crane would.
func helperGet(t *testing.T, env []string, serverURL string) (user, secret, out string, code int) {
	t.Helper()
	stdout, stderr, code := testenv.Run(t, env, serverURL+"\n", filepath.Join(binDir, "docker-credential-connector"), "get")
	if code != 0 {
		return "", "", stdout + stderr, code
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatalf("helper get %s printed no JSON: %v", serverURL, err)
	}
	return c.Username, c.Secret, "", 0
}

func craneManifest(t *testing.T, env []string, ref string) (string, int) {
	t.Helper()
	_, stderr, code := testenv.Run(t, env, "", testenv.Tool(t, "crane"), "manifest", "--insecure", ref)
	return stderr, code
}

// listJSON runs `connectord list --json` against d.
func listJSON(t *testing.T, d *daemonProc) map[string]connectors.Info {
	t.Helper()
	stdout, stderr, code := testenv.Run(t, nil, "", filepath.Join(binDir, "connectord"), "list", "--json", "--socket", d.socket)
	if code != 0 {
		t.Fatalf("connectord list --json: exit %d\n%s", code, stderr)
	}
	var l []connectors.Info
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatalf("connectord list --json: %v\n%s", err, stdout)
	}
	// The contract of list --json: these keys are always there.
	var raw []map[string]any
	_ = json.Unmarshal([]byte(stdout), &raw)
	for _, e := range raw {
		for _, k := range []string{"name", "type", "auth_method", "resource_type", "resource_id", "expires_at", "origin"} {
			if _, ok := e[k]; !ok {
				t.Errorf("list --json entry %v lacks %q", e["name"], k)
			}
		}
	}
	out := map[string]connectors.Info{}
	for _, i := range l {
		out[i.Name] = i
	}
	return out
}

// issuerSetup is one issuer's files and environment.
type issuerSetup struct {
	dir, state, htpasswd, fail string
	env                        map[string]string
}

func newIssuer(t *testing.T, reg *testenv.Registry) *issuerSetup {
	t.Helper()
	dir := t.TempDir()
	is := &issuerSetup{dir: dir, state: filepath.Join(dir, "state.json"), htpasswd: filepath.Join(reg.Dir, "htpasswd"), fail: filepath.Join(dir, "fail")}
	is.env = map[string]string{"ISSUER_STATE": is.state, "ISSUER_HTPASSWD": is.htpasswd, "ISSUER_FAIL": is.fail}
	return is
}

// connectorEnv is the env table of a connector calling this issuer.
func (is *issuerSetup) connectorEnv(calls string, extra map[string]string) string {
	m := map[string]string{"ISSUER_CALLS": filepath.Join(is.dir, calls)}
	for k, v := range is.env {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s = %q", k, m[k]))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func (is *issuerSetup) calls(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(is.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

type ledgerEntry struct {
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

func (is *issuerSetup) ledger(t *testing.T) map[string]ledgerEntry {
	t.Helper()
	var st struct {
		Ledger map[string]ledgerEntry `json:"ledger"`
	}
	b, err := os.ReadFile(is.state)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ledger
}

// reap runs the issuer's -reap every 500 ms until the test ends, so that
// an expired user leaves the htpasswd file promptly even when nobody asks
// for a new one.
func (is *issuerSetup) reap(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range is.env {
		env = append(env, k+"="+v)
	}
	wg.Go(func() {
		for {
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "issuer"), "-reap")
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil && ctx.Err() == nil {
				t.Errorf("issuer -reap: %v\n%s", err, out)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
}

func TestRotationWithRealRegistry(t *testing.T) {
	needBinaries(t)
	t.Parallel()
	const seedUser, seedPass = "seed", "seed-pass-SECRET"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{seedUser: seedPass}})
	reg.SeedImage(t, "stated/app", "v1", seedUser, seedPass)
	reg.SeedImage(t, "unstated/app", "v1", seedUser, seedPass)
	is := newIssuer(t, reg)
	issuer := filepath.Join(binDir, "issuer")
	// "stated": the issuer states ExpiresAt, lifetimes drawn from 20-40 s,
	// skew tolerance 5 s. "unstated": the issuer states no expiry, so the
	// connector's expiration_seconds (30) is the lifetime, with the
	// default skew (a quarter of it: 7.5 s).
	cfg := fmt.Sprintf(`version = 1

[[connector]]
name = "stated"
type = "exec"
auth_method = "command"
resource_id = %q
expires_skew_tolerance = 5
[connector.config]
command = [%q]
timeout = "10s"
env = %s

[[connector]]
name = "unstated"
type = "exec"
auth_method = "command"
resource_id = %q
expiration_seconds = 30
[connector.config]
command = [%q]
timeout = "10s"
env = %s
`, reg.Host, issuer, is.connectorEnv("calls-stated", map[string]string{"ISSUER_MIN_LIFE": "20", "ISSUER_MAX_LIFE": "40"}),
		reg.Host+"/unstated", issuer, is.connectorEnv("calls-unstated", map[string]string{"ISSUER_MIN_LIFE": "30", "ISSUER_MAX_LIFE": "30", "ISSUER_NO_EXPIRY": "1"}))
	d := startDaemon(t, cfg)
	// From now on only minted users exist: the first reap writes an
	// htpasswd file without the seed user.
	is.reap(t)
	env := clientEnv(t, d)

	const run = 75 * time.Second
	type seen struct {
		users     map[string]bool
		minMargin time.Duration
	}
	byRepo := map[string]*seen{"stated/app": {users: map[string]bool{}, minMargin: time.Hour}, "unstated/app": {users: map[string]bool{}, minMargin: time.Hour}}
	var craneRuns, craneFailures, helperGets, expired int
	start := time.Now()
	for i := 0; time.Since(start) < run; i++ {
		repo := []string{"stated/app", "unstated/app"}[i%2]
		// What the helper hands out must never be expired.
		user, _, out, code := helperGet(t, env, reg.Host+"/"+repo)
		returned := time.Now()
		helperGets++
		if code != 0 {
			craneFailures++
			t.Errorf("helper get %s at +%s: exit %d: %s", repo, returned.Sub(start).Round(time.Millisecond), code, out)
		} else {
			e, ok := is.ledger(t)[user]
			switch {
			case !ok:
				t.Errorf("helper handed out %q, which the issuer never minted", user)
			case !returned.Before(e.Expires):
				expired++
				t.Errorf("helper handed out %s at %s, expired at %s", user, returned.Format(time.StampMilli), e.Expires.Format(time.StampMilli))
			default:
				s := byRepo[repo]
				s.users[user] = true
				s.minMargin = min(s.minMargin, e.Expires.Sub(returned))
			}
		}
		// And a real client pulls with it through the real registry.
		stderr, code := craneManifest(t, env, reg.Host+"/"+repo+":v1")
		craneRuns++
		if code != 0 {
			craneFailures++
			if craneFailures < 5 {
				t.Errorf("crane manifest %s at +%s: exit %d\n%s", repo, time.Since(start).Round(time.Millisecond), code, stderr)
			}
		}
	}
	elapsed := time.Since(start)
	gets := strings.Count(d.log(t), `msg=get `)
	stated, unstated := is.calls(t, "calls-stated"), is.calls(t, "calls-unstated")
	t.Logf("%s: %d crane manifest runs and %d helper gets (%d gets served by the daemon); failures %d, expired handed out %d",
		elapsed.Round(time.Second), craneRuns, helperGets, gets, craneFailures, expired)
	t.Logf("issuer calls: stated %d (credentials seen %d, least time left %s), unstated %d (credentials seen %d, least time left %s)",
		stated, len(byRepo["stated/app"].users), byRepo["stated/app"].minMargin.Round(time.Millisecond),
		unstated, len(byRepo["unstated/app"].users), byRepo["unstated/app"].minMargin.Round(time.Millisecond))
	if craneFailures != 0 || expired != 0 {
		t.Fatalf("%d failures, %d expired credentials handed out; want none", craneFailures, expired)
	}
	// About one call per renewal: renewals fall in [0.567, 0.667] of a
	// lifetime, so "stated" (20-40 s) renews every 11-27 s and
	// "unstated" (30 s) every 17-20 s; one more call at the start.
	for _, c := range []struct {
		name               string
		calls, lo, hi, saw int
	}{
		{"stated", stated, 3, 1 + int(elapsed/(11*time.Second)) + 1, len(byRepo["stated/app"].users)},
		{"unstated", unstated, 4, 1 + int(elapsed/(17*time.Second)) + 1, len(byRepo["unstated/app"].users)},
	} {
		if c.calls < c.lo || c.calls > c.hi {
			t.Errorf("%s: the issuer was called %d times in %s, want %d..%d (about once per two-thirds of a lifetime)", c.name, c.calls, elapsed.Round(time.Second), c.lo, c.hi)
		}
		if c.saw < 3 {
			t.Errorf("%s: the helper handed out %d distinct credentials, want the credential to have rotated several times", c.name, c.saw)
		}
	}
	if gets < 10*(stated+unstated) {
		t.Errorf("%d gets for %d issuer calls: the issuer must not be called per get", gets, stated+unstated)
	}

	// status and list --json show the refresh state.
	infos := listJSON(t, d)
	for _, name := range []string{"stated", "unstated"} {
		i := infos[name]
		if i.Type != cexec.TypeID || i.Origin != "config" || i.ExpiresAt == nil || i.LastRefresh == nil || i.NextRefresh == nil ||
			!i.NextRefresh.Before(*i.ExpiresAt) || i.LastError != "" {
			t.Errorf("list --json %s = %+v", name, i)
		}
	}
	stdout, _, code := testenv.Run(t, nil, "", filepath.Join(binDir, "connectord"), "status", "--socket", d.socket)
	if code != 0 || !strings.Contains(stdout, "NEXT REFRESH") || !strings.Contains(stdout, "stated") {
		t.Errorf("connectord status: exit %d\n%s", code, stdout)
	}

	// The registry itself refuses a credential once it has expired.
	ledger := is.ledger(t)
	var old string
	for u, e := range ledger {
		if time.Until(e.Expires) < -2*time.Second {
			old = u
			break
		}
	}
	if old == "" {
		t.Fatal("no credential has expired yet")
	}
	oldCfg := t.TempDir()
	if err := testenv.WriteDockerConfig(oldCfg, reg.Host, old, ledger[old].Password); err != nil {
		t.Fatal(err)
	}
	oldEnv := append(slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "DOCKER_CONFIG=") }), "DOCKER_CONFIG="+oldCfg)
	if stderr, code := craneManifest(t, oldEnv, reg.Host+"/stated/app:v1"); code == 0 || !strings.Contains(strings.ToLower(stderr), "unauthorized") {
		t.Errorf("the registry accepted expired user %s: exit %d\n%s", old, code, stderr)
	}

	// No minted secret reached the daemon's log.
	logText := d.log(t)
	for u, e := range ledger {
		if strings.Contains(logText, e.Password) {
			t.Errorf("the password of %s is in the daemon log", u)
		}
	}
}

func TestIssuerOutage(t *testing.T) {
	needBinaries(t)
	t.Parallel()
	const seedUser, seedPass = "seed", "seed-pass-SECRET"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{seedUser: seedPass}})
	reg.SeedImage(t, "fault/app", "v1", seedUser, seedPass)
	is := newIssuer(t, reg)
	// 20 s credentials, default skew 5 s: each is handed out for 15 s.
	cfg := fmt.Sprintf(`version = 1

[[connector]]
name = "flaky"
type = "exec"
auth_method = "command"
resource_id = %q
[connector.config]
command = [%q]
timeout = "10s"
env = %s
`, reg.Host, filepath.Join(binDir, "issuer"), is.connectorEnv("calls", map[string]string{"ISSUER_MIN_LIFE": "20", "ISSUER_MAX_LIFE": "20"}))
	d := startDaemon(t, cfg)
	is.reap(t)
	env := clientEnv(t, d)
	ref := reg.Host + "/fault/app:v1"

	if stderr, code := craneManifest(t, env, ref); code != 0 {
		t.Fatalf("crane manifest before the outage: exit %d\n%s", code, stderr)
	}
	user, _, out, code := helperGet(t, env, reg.Host)
	if code != 0 {
		t.Fatalf("helper get: %s", out)
	}
	usableUntil := is.ledger(t)[user].Expires.Add(-5 * time.Second)
	const outage = "token service unavailable (simulated outage)"
	if err := os.WriteFile(is.fail, []byte(outage), 0o600); err != nil {
		t.Fatal(err)
	}
	callsAtOutage := is.calls(t, "calls")

	// While the credential is usable, gets keep succeeding, though the
	// renewal at two-thirds of its life fails.
	var during int
	for time.Until(usableUntil) > 1500*time.Millisecond {
		if stderr, code := craneManifest(t, env, ref); code != 0 {
			t.Fatalf("crane manifest during the outage, %s before the credential's end: exit %d\n%s", time.Until(usableUntil).Round(time.Millisecond), code, stderr)
		}
		if u, _, out, code := helperGet(t, env, reg.Host); code != 0 || u != user {
			t.Fatalf("helper get during the outage = %q, %s", u, out)
		}
		during++
		time.Sleep(300 * time.Millisecond)
	}
	if is.calls(t, "calls") == callsAtOutage {
		t.Errorf("the daemon did not try to renew during the outage")
	}

	// Then gets fail with a clear error: never the expired credential,
	// never docker's not-found.
	time.Sleep(time.Until(usableUntil) + 500*time.Millisecond)
	var failed int
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); failed++ {
		u, _, out, code := helperGet(t, env, reg.Host)
		if code == 0 {
			t.Fatalf("helper get after the credential's end handed out %s", u)
		}
		if !strings.Contains(out, "no valid credential") || !strings.Contains(out, outage) || strings.Contains(out, "not found in native keychain") {
			t.Fatalf("helper get after the credential's end: want a clear error with the issuer's stderr, got:\n%s", out)
		}
		stderr, code := craneManifest(t, env, ref)
		if code == 0 || !strings.Contains(stderr, outage) {
			t.Fatalf("crane manifest after the credential's end: exit %d\n%s", code, stderr)
		}
		time.Sleep(300 * time.Millisecond)
	}
	info := listJSON(t, d)["flaky"]
	if !strings.Contains(info.LastError, outage) || info.LastErrorAt == nil || info.Attempts < 2 {
		t.Errorf("list --json during the outage: %+v", info)
	}
	t.Logf("outage: %d gets succeeded on the still-usable credential, %d failed clearly after it; issuer calls %d -> %d, attempts %d",
		during, failed, callsAtOutage, is.calls(t, "calls"), info.Attempts)

	// The issuer recovers: gets succeed again, with nothing restarted.
	if err := os.Remove(is.fail); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	for {
		u, _, _, code := helperGet(t, env, reg.Host)
		if code == 0 && u != user {
			break
		}
		if time.Since(recovered) > 5*time.Second {
			t.Fatalf("gets still fail 5s after the issuer recovered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("gets succeed again %s after the issuer recovered", time.Since(recovered).Round(time.Millisecond))
	if stderr, code := craneManifest(t, env, ref); code != 0 {
		t.Fatalf("crane manifest after recovery: exit %d\n%s", code, stderr)
	}
	var st struct {
		PID int `json:"pid"`
	}
	stdout, _, _ := testenv.Run(t, nil, "", filepath.Join(binDir, "connectord"), "status", "--json", "--socket", d.socket)
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.PID != d.pid {
		t.Errorf("status pid %d (%v), want the daemon started at the beginning (%d)", st.PID, err, d.pid)
	}
	if info := listJSON(t, d)["flaky"]; info.Attempts != 0 || info.LastError == "" || info.ExpiresAt == nil || time.Until(*info.ExpiresAt) < 10*time.Second {
		t.Errorf("list --json after recovery: %+v", info)
	}
}

func TestKubeletPluginWithRealRegistry(t *testing.T) {
	needBinaries(t)
	t.Parallel()
	const user, pass = "kubeuser", "kube-pass-SECRET"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{user: pass}})
	reg.SeedImage(t, "kube/app", "v1", user, pass)
	port := reg.Host[strings.LastIndexByte(reg.Host, ':')+1:]
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(pass), 0o600); err != nil {
		t.Fatal(err)
	}
	pluginEnv := func(log, apiVersion, key string) string {
		return fmt.Sprintf(`{ PLUGIN_LOG = %q, PLUGIN_API_VERSION = %q, PLUGIN_KEY = %q, PLUGIN_KEY_TYPE = "Registry", PLUGIN_DURATION = "45s", PLUGIN_USER = %q, PLUGIN_PASSWORD_FILE = %q }`,
			filepath.Join(dir, log), apiVersion, key, user, pwFile)
	}
	// "kube" serves a glob of hosts and its plugin answers with a glob
	// key; "kube-wrong" serves the same registry as localhost, and its
	// plugin answers in another apiVersion than it was asked in.
	cfg := fmt.Sprintf(`version = 1

[[connector]]
name = "kube"
type = "exec"
auth_method = "kubelet-plugin"
resource_id = "127.0.0.*:%[1]s"
[connector.config]
command = [%[2]q]
env = %[3]s

[[connector]]
name = "kube-wrong"
type = "exec"
auth_method = "kubelet-plugin"
resource_id = "localhost:%[1]s"
[connector.config]
command = [%[2]q]
env = %[4]s
`, port, script("kubeplugin"), pluginEnv("requests", cexec.APIVersionV1, "127.0.0.*:"+port),
		pluginEnv("requests-wrong", cexec.APIVersionV1beta1, "localhost:"+port))
	d := startDaemon(t, cfg)
	env := clientEnv(t, d)

	for range 5 {
		if stderr, code := craneManifest(t, env, reg.Host+"/kube/app:v1"); code != 0 {
			t.Fatalf("crane manifest through the kubelet plugin: exit %d\n%s", code, stderr)
		}
	}
	reqs, err := os.ReadFile(filepath.Join(dir, "requests"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"` + reg.Host + `/kube/app"}` + "\n"
	if string(reqs) != want {
		t.Errorf("the plugin was asked:\n%s\nwant one request (cacheKeyType Registry, cacheDuration 45s):\n%s", reqs, want)
	}
	info := listJSON(t, d)["kube"]
	if info.ResourceID != "127.0.0.*:"+port || info.ExpiresAt == nil || time.Until(*info.ExpiresAt) > 45*time.Second || time.Until(*info.ExpiresAt) < 30*time.Second {
		t.Errorf("list --json kube = %+v, want the glob and an expiry from cacheDuration", info)
	}

	_, _, out, code := helperGet(t, env, "localhost:"+port)
	if code == 0 || !strings.Contains(out, `answered apiVersion "credentialprovider.kubelet.k8s.io/v1beta1" to a credentialprovider.kubelet.k8s.io/v1 request`) {
		t.Errorf("helper get through a plugin answering in another apiVersion: exit %d\n%s", code, out)
	}
	if stderr, code := craneManifest(t, env, "localhost:"+port+"/kube/app:v1"); code == 0 || !strings.Contains(stderr, "apiVersion") {
		t.Errorf("crane manifest through a plugin answering in another apiVersion: exit %d\n%s", code, stderr)
	}
	if strings.Contains(d.log(t), pass) {
		t.Error("the plugin's password is in the daemon log")
	}
}
