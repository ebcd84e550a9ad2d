package cli

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/connectord/connectord/credhelper"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// These tests run the real binaries: `connectord serve` as a process,
// the CLI as a process (its exit codes and stdin are what users get) and
// the credential helper under crane.

const (
	alicePass = "alice-pass-S3CRET"
	wrongPass = "wrong-pass-S3CRET"
)

// realDaemon is a `connectord serve` process.
type realDaemon struct {
	bin  string   // directory of both binaries
	sock string   // its socket
	log  string   // its stdout+stderr
	env  []string // the environment for clients of it
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	outputs []string // every CLI output, for the secret scan
	secrets []string // what must appear in none of them, nor in the log
}

// cleanEnv is the test's environment without what would point a client
// or the daemon elsewhere.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, p := range []string{"CONNECTORD_", "DOCKER_CONFIG=", "SSL_CERT_FILE=", "SSL_CERT_DIR=", "XDG_"} {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
		return false
	})
}

// startRealDaemon runs the daemon with config cfg; caFile, when set, is
// its SSL_CERT_FILE (Go reads the system roots once per process, so the
// daemon, which verifies, must have it from the start).
func startRealDaemon(t *testing.T, cfg, caFile string) *realDaemon {
	t.Helper()
	bin := builtBinaries(t)
	dir := testenv.ShortTempDir(t)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &realDaemon{bin: bin, sock: filepath.Join(dir, "run", "c.sock"), log: filepath.Join(dir, "daemon.log"), done: make(chan struct{})}
	env := cleanEnv()
	if caFile != "" {
		env = append(env, "SSL_CERT_FILE="+caFile)
	}
	d.env = append(slices.Clone(env), "CONNECTORD_SOCKET="+d.sock, "CONNECTORD_NO_AUTOSTART=1")

	logFile, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command(filepath.Join(bin, "connectord"), "serve", "--config", cfgPath, "--socket", d.sock,
		"--store", filepath.Join(dir, "state", "credentials.json"), "--log-level", "debug")
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	testenv.KillWithTest(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.stop(t) })

	c := client.New(d.sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Do(ctx, &ipc.Request{Op: ipc.OpPing})
		cancel()
		if err == nil {
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("the daemon exited (%v):\n%s", d.cmd.ProcessState, d.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not answer within 10s (%v):\n%s", err, d.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *realDaemon) logText() string {
	b, _ := os.ReadFile(d.log)
	return string(b)
}

// stop ends the daemon with SIGTERM, as systemd does, expects a clean
// exit, and scans its log and every CLI output for the secrets.
func (d *realDaemon) stop(t *testing.T) {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("the daemon ignored SIGTERM for 10s")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the daemon exited %d:\n%s", code, d.logText())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	texts := append([]string{d.logText()}, d.outputs...)
	for _, s := range d.secrets {
		for _, text := range texts {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("a secret appears in a CLI output or the daemon log:\n%s", text)
			}
		}
	}
}

// mustNotShow adds secrets to the scan.
func (d *realDaemon) mustNotShow(secrets ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.secrets = append(d.secrets, secrets...)
}

// ctl runs `connectord ARGS` against the daemon, with stdin.
func (d *realDaemon) ctl(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	stdout, stderr, code = testenv.Run(t, d.env, stdin, filepath.Join(d.bin, "connectord"), args...)
	d.mu.Lock()
	d.outputs = append(d.outputs, stdout, stderr)
	d.mu.Unlock()
	return stdout, stderr, code
}

// helperGet runs the credential helper's get, as a client would. Its
// output holds the secret by design, so it is not scanned.
func (d *realDaemon) helperGet(t *testing.T, server string) (user, secret, failure string) {
	t.Helper()
	stdout, stderr, code := testenv.Run(t, d.env, server, filepath.Join(d.bin, "docker-credential-connector"), "get")
	if code != 0 {
		return "", "", strings.TrimSpace(stdout + stderr)
	}
	var c struct{ Username, Secret string }
	if err := json.Unmarshal([]byte(stdout), &c); err != nil {
		t.Fatalf("helper get %s printed %q: %v", server, stdout, err)
	}
	return c.Username, c.Secret, ""
}

func connectorTOMLFor(name, host, user, pass string) string {
	return fmt.Sprintf("[[connector]]\nname = %q\ntype = \"docker\"\nresource_id = %q\n[connector.config]\nusername = %q\npassword = %q\n\n", name, host, user, pass)
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": alicePass}
	lab := testenv.StartRegistry(t, testenv.RegistryOptions{Users: users})
	sec := testenv.StartRegistry(t, testenv.RegistryOptions{Users: users, TLS: true})
	tok := testenv.StartTokenRegistry(t, users)
	for _, r := range []*testenv.Registry{lab, sec, tok} {
		r.SeedImage(t, "alice/app", "v1", "alice", alicePass)
	}
	lab.SeedImage(t, "team/tool", "v1", "alice", alicePass)

	cfg := connectorTOMLFor("lab", lab.Host, "alice", alicePass) +
		connectorTOMLFor("lab-bad", lab.Host+"/alice", "alice", wrongPass) +
		connectorTOMLFor("sec", sec.Host, "alice", alicePass) +
		connectorTOMLFor("tok", tok.Host, "alice", alicePass)
	d := startRealDaemon(t, cfg, sec.CAFile)
	d.mustNotShow(alicePass, wrongPass)

	t.Run("htpasswd over HTTP", func(t *testing.T) {
		start := time.Now()
		stdout, stderr, code := d.ctl(t, "", "verify", "lab")
		if code != 0 || stderr != "" {
			t.Fatalf("verify lab: exit %d\n%s%s", code, stdout, stderr)
		}
		t.Logf("verify lab took %v", time.Since(start).Round(time.Millisecond))
		for _, want := range []string{"name:", "lab", "resource id:", lab.Host, "endpoint:", "http://" + lab.Host, "auth:", "basic", "repositories:", "2", "  alice/app\n", "  team/tool\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("verify lab output lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("flags after the name", func(t *testing.T) {
		stdout, _, code := d.ctl(t, "", "verify", "lab", "--resource-id", lab.Host+"/team", "--json")
		var res connectors.Resources
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || !slices.Equal(res.Repositories, []string{"team/tool"}) || res.ResourceID != lab.Host+"/team" {
			t.Errorf("verify lab --resource-id HOST/team --json: exit %d, %+v\n%s", code, res, stdout)
		}
	})
	for _, tc := range []struct{ name, conn, endpoint, auth string }{
		{"htpasswd over TLS", "sec", "https://" + sec.Host, "basic"},
		{"token auth", "tok", "http://" + tok.Host, "bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := d.ctl(t, "", "verify", "--json", tc.conn)
			var res connectors.Resources
			if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil {
				t.Fatalf("verify %s: exit %d (%v)\n%s%s", tc.conn, code, err, stdout, stderr)
			}
			if res.Endpoint != tc.endpoint || res.Auth != tc.auth || !slices.Equal(res.Repositories, []string{"alice/app"}) || res.ResourceType != "docker-registry" {
				t.Errorf("verify %s = %+v", tc.conn, res)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		stdout, stderr, code := d.ctl(t, "", "verify", "lab-bad")
		want := `connectord: connector "lab-bad": authentication failed at ` + lab.Host + ": wrong username or password"
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, want) {
			t.Errorf("verify lab-bad: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, want)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown", []string{"verify", "nope"}, 1, `no connector or stored credential named "nope"`},
		{"not served", []string{"verify", "lab", "--resource-id", "other.example"}, 1, `connector "lab" does not serve other.example`},
		{"no name", []string{"verify"}, 2, "name one connector or registry"},
		{"bad flag", []string{"verify", "--nope", "lab"}, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := d.ctl(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.want)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		stdout, _, code := d.ctl(t, "", "verify", "--help")
		if code != 0 || !strings.Contains(stdout, "Usage: connectord verify NAME") || !strings.Contains(stdout, "-resource-id string") {
			t.Errorf("verify --help: exit %d\n%s", code, stdout)
		}
	})
	t.Run("login to a connector's registry", func(t *testing.T) {
		// The registry accepts alice, but a config connector owns it.
		_, stderr, code := d.ctl(t, alicePass+"\n", "login", lab.Host, "-u", "alice", "--password-stdin")
		if code != 1 || !strings.Contains(stderr, `served by connector "lab" from the config`) {
			t.Errorf("login to %s: exit %d, stderr %q", lab.Host, code, stderr)
		}
	})
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": alicePass}
	lab := testenv.StartRegistry(t, testenv.RegistryOptions{Users: users})
	tok := testenv.StartTokenRegistry(t, users)
	digest := tok.SeedImage(t, "alice/app", "v1", "alice", alicePass)
	d := startRealDaemon(t, "", "")
	d.mustNotShow(alicePass, wrongPass)

	notFound := credhelper.NotFoundMessage
	// A wrong password stores nothing.
	for _, r := range []*testenv.Registry{lab, tok} {
		_, stderr, code := d.ctl(t, wrongPass+"\n", "login", r.Host, "-u", "alice", "--password-stdin")
		want := "connectord: login failed: wrong username or password for " + r.Host
		if code != 1 || !strings.HasPrefix(stderr, want) {
			t.Errorf("login %s with a wrong password: exit %d, stderr %q; want 1 and %q", r.Host, code, stderr, want)
		}
		if _, _, fail := d.helperGet(t, r.Host); fail != notFound {
			t.Errorf("helper get %s after a failed login: %q, want %q", r.Host, fail, notFound)
		}
	}

	// htpasswd: the password itself is stored.
	start := time.Now()
	stdout, stderr, code := d.ctl(t, alicePass+"\n", "login", lab.Host, "-u", "alice", "--password-stdin")
	if code != 0 || stdout != "Login Succeeded\n" {
		t.Fatalf("login %s: exit %d\n%s%s", lab.Host, code, stdout, stderr)
	}
	t.Logf("login to the htpasswd registry took %v", time.Since(start).Round(time.Millisecond))
	if u, s, fail := d.helperGet(t, lab.Host); u != "alice" || s != alicePass {
		t.Errorf("helper get %s after login: user %q, password stored: %v, failure %q", lab.Host, u, s == alicePass, fail)
	}

	// Token auth: the identity token is stored, not the password.
	start = time.Now()
	stdout, stderr, code = d.ctl(t, alicePass+"\r\n", "login", "--password-stdin", "--username=alice", tok.Host)
	if code != 0 || stdout != "Login Succeeded\n" || !strings.Contains(stderr, "identity token") {
		t.Fatalf("login %s: exit %d\n%s%s", tok.Host, code, stdout, stderr)
	}
	t.Logf("login to the token registry took %v", time.Since(start).Round(time.Millisecond))
	user, refresh, fail := d.helperGet(t, tok.Host)
	if user != "<token>" || refresh == "" || refresh == alicePass || fail != "" {
		t.Fatalf("helper get %s after login: user %q, empty secret %v, secret is the password %v, failure %q",
			tok.Host, user, refresh == "", refresh == alicePass, fail)
	}
	d.mustNotShow(refresh)
	stdout, _, code = d.ctl(t, "", "describe", tok.Host, "--json")
	var info connectors.Info
	if code != 0 || json.Unmarshal([]byte(stdout), &info) != nil || info.Config["username"] != "<token>" || info.Origin != "store" {
		t.Errorf("describe %s: exit %d\n%s", tok.Host, code, stdout)
	}

	// crane pulls through the helper with the identity token (the
	// OAuth2 refresh grant against the token server).
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"credsStore":"connector"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	craneEnv := append(slices.Clone(d.env), "DOCKER_CONFIG="+cfgDir, "PATH="+d.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	crane := testenv.Tool(t, "crane")
	ref := tok.Host + "/alice/app:v1"
	start = time.Now()
	out, errOut, code := testenv.Run(t, craneEnv, "", crane, "export", "--insecure", ref, "-")
	if code != 0 {
		t.Fatalf("crane export %s through the helper: exit %d\n%s", ref, code, errOut)
	}
	t.Logf("crane export through the helper took %v", time.Since(start).Round(time.Millisecond))
	if got := fileInTar(t, out, testenv.SeedFile); got != testenv.SeedContent("alice/app", "v1") {
		t.Errorf("pulled %s = %q, want the seeded content", testenv.SeedFile, got)
	}
	if out, errOut, code := testenv.Run(t, craneEnv, "", crane, "digest", "--insecure", ref); code != 0 || strings.TrimSpace(out) != digest {
		t.Errorf("crane digest %s: exit %d %q (want %s)\n%s", ref, code, out, digest, errOut)
	}

	// The stored identity token verifies by registry name.
	stdout, _, code = d.ctl(t, "", "verify", tok.Host, "--json")
	var res connectors.Resources
	if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || res.Auth != "bearer" || !slices.Equal(res.Repositories, []string{"alice/app"}) {
		t.Errorf("verify %s: exit %d\n%s", tok.Host, code, stdout)
	}

	// logout erases; the helper then answers docker's not-found.
	for _, r := range []*testenv.Registry{lab, tok} {
		stdout, stderr, code := d.ctl(t, "", "logout", r.Host)
		if code != 0 || stdout != "Removing login credentials for "+r.Host+"\n" {
			t.Errorf("logout %s: exit %d\n%s%s", r.Host, code, stdout, stderr)
		}
		if _, _, fail := d.helperGet(t, r.Host); fail != notFound {
			t.Errorf("helper get %s after logout: %q, want %q", r.Host, fail, notFound)
		}
		stdout, _, code = d.ctl(t, "", "logout", r.Host)
		if code != 0 || stdout != "Not logged in to "+r.Host+"\n" {
			t.Errorf("second logout %s: exit %d %q", r.Host, code, stdout)
		}
	}
	if _, _, code := testenv.Run(t, craneEnv, "", crane, "digest", "--insecure", ref); code == 0 {
		t.Errorf("crane digest %s after logout succeeded", ref)
	}
}

func TestLoginPrompt(t *testing.T) {
	t.Parallel()
	sh, script := testenv.Tool(t, "sh"), testenv.Tool(t, "script")
	lab := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{"alice": alicePass}})
	d := startRealDaemon(t, "", "")
	d.mustNotShow(alicePass)

	// script(1) gives login a terminal and records what it shows. Each
	// answer is typed a second after the one before, so it arrives after
	// its prompt: the password must then not be echoed. It comes in
	// through the environment, never argv.
	env := append(slices.Clone(d.env), "PW="+alicePass, "CMD="+filepath.Join(d.bin, "connectord")+" login "+lab.Host)
	shell := `(sleep 1; printf 'alice\n'; sleep 1; printf '%s\n' "$PW") | ` + script + ` -qec "$CMD" /dev/null`
	screen, stderr, code := testenv.Run(t, env, "", sh, "-c", shell)
	d.mu.Lock()
	d.outputs = append(d.outputs, screen, stderr)
	d.mu.Unlock()
	if code != 0 || !strings.Contains(screen, "Username: ") || !strings.Contains(screen, "Password: ") || !strings.Contains(screen, "Login Succeeded") {
		t.Fatalf("interactive login: exit %d\n%s%s", code, screen, stderr)
	}
	if u, s, fail := d.helperGet(t, lab.Host); u != "alice" || s != alicePass {
		t.Errorf("helper get after an interactive login: user %q, password stored: %v, failure %q", u, s == alicePass, fail)
	}
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	d := startRealDaemon(t, "", "")
	d.mustNotShow(alicePass)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no TTY", "", []string{"login", "127.0.0.1:1", "-u", "alice"}, 1, "Cannot perform an interactive login from a non TTY device"},
		{"password in argv", "", []string{"login", "127.0.0.1:1", "-u", "alice", "-p", alicePass}, 2, "never taken on the command line"},
		{"password= in argv", "", []string{"login", "--password=" + alicePass, "127.0.0.1:1"}, 2, "never taken on the command line"},
		{"stdin without user", alicePass, []string{"login", "127.0.0.1:1", "--password-stdin"}, 2, "needs --username"},
		{"empty password", "\n", []string{"login", "127.0.0.1:1", "-u", "alice", "--password-stdin"}, 1, "password on stdin is empty"},
		{"bad registry", "", []string{"login", "ftp://x y"}, 2, "invalid registry resource id"},
		{"unreachable", alicePass, []string{"login", "127.0.0.1:1", "-u", "alice", "--password-stdin"}, 1, "login failed: 127.0.0.1:1: cannot reach the registry"},
		{"two registries", "", []string{"login", "a.example", "b.example"}, 2, "unexpected arguments"},
		{"logout of nothing", "", []string{"logout", "nothing.example"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := d.ctl(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.name, code, stderr, tc.code, tc.want)
			}
		})
	}
	// Without a daemon, login says so before asking anything.
	env := append(cleanEnv(), "CONNECTORD_SOCKET="+filepath.Join(testenv.ShortTempDir(t), "none.sock"))
	_, stderr, code := testenv.Run(t, env, alicePass, filepath.Join(d.bin, "connectord"), "login", "127.0.0.1:1", "-u", "alice", "--password-stdin")
	if code != 1 || !strings.Contains(stderr, "none.sock") || strings.Contains(stderr, alicePass) {
		t.Errorf("login without a daemon: exit %d, stderr %q", code, stderr)
	}
}

func TestInterleaveFlags(t *testing.T) {
	t.Parallel()
	e := &env{stderr: io.Discard}
	fs := e.flagSet("login", "", "")
	fs.String("u", "", "")
	fs.Bool("password-stdin", false, "")
	for _, tc := range []struct{ in, want []string }{
		{[]string{"host", "-u", "alice", "--password-stdin"}, []string{"-u", "alice", "--password-stdin", "--", "host"}},
		{[]string{"--password-stdin", "host", "-u=alice"}, []string{"--password-stdin", "-u=alice", "--", "host"}},
		{[]string{"host", "--", "-odd"}, []string{"--", "host", "-odd"}},
		{[]string{"host", "-u"}, []string{"-u", "--", "host"}},
	} {
		if got := interleaveFlags(fs, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interleaveFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// fileInTar returns the content of name in the tar stream data.
func fileInTar(t *testing.T, data, name string) string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(data))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s not in the pulled image", name)
		}
		if err != nil {
			t.Fatalf("reading the pulled image: %v", err)
		}
		if strings.TrimPrefix(hdr.Name, "/") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
}
