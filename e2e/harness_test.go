package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
)

const (
	// helperName is the credential helper's binary; docker config files
	// name it "connector".
	helperName = "docker-credential-connector"
	// notFound is what the helper prints for a registry it has nothing
	// for: docker-credential-helpers' exact text, which clients match to
	// fall back to anonymous access.
	notFound = "credentials not found in native keychain"

	// Hang guards only, never assertions about speed: a daemon that does
	// not answer or does not exit within these is broken.
	daemonStartGuard = 30 * time.Second
	daemonStopGuard  = 30 * time.Second
)

// ---------------------------------------------------------------- commands

// result is what a command printed and how it exited.
type result struct {
	cmdline        string
	stdout, stderr string
	code           int
	// secretStdout: stdout carries a credential by design (a successful
	// get of the helper). It is kept out of the secret scan and out of
	// failure messages.
	secretStdout bool
}

// output is stdout and stderr together, for "the user sees X" checks.
func (r result) output() string { return r.stdout + r.stderr }

func (r result) String() string {
	out := r.stdout
	if r.secretStdout {
		out = "[stdout withheld: it carries a credential]"
	}
	return fmt.Sprintf("$ %s\nexit %d\nstdout:\n%s\nstderr:\n%s", r.cmdline, r.code, out, r.stderr)
}

type runOpts struct {
	env   []string // the complete environment
	dir   string   // working directory; "" is the test process's
	stdin string
	// secretStdout marks the one output that legitimately carries a
	// secret: the helper's `get` answers with the password on stdout, as
	// docker's helper protocol requires. Only that stdout, and only when
	// the get succeeded (exit 0), is excluded from the secret scan. A
	// failed get prints an error on stdout, which clients show the user:
	// that is scanned, as is stderr.
	secretStdout bool
}

// run runs name with args and returns what it printed. A non-zero exit is
// not a failure here (callers assert on it); a command that cannot start,
// or hangs past testenv.RunTimeout, is. Both streams are recorded for the
// secret scan. Never put a secret in args: pass it on stdin.
func run(t testing.TB, o runOpts, name string, args ...string) result {
	t.Helper()
	timeout := testenv.RunTimeout
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			if left := time.Until(d) - 5*time.Second; left > 0 && left < timeout {
				timeout = left
			}
		}
	}
	r, err := execute(t.Name(), timeout, o, name, args...)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		t.Errorf("killed after %v:\n%s", timeout, r)
	case err != nil:
		t.Fatalf("running %s: %v", name, err)
	}
	return r
}

// execute is run for any goroutine: it touches no testing.T. It returns
// context.DeadlineExceeded (with code -1) if the command was killed after
// timeout, and any error that kept it from running.
func execute(label string, timeout time.Duration, o runOpts, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = o.env
	cmd.Dir = o.dir
	if o.stdin != "" {
		cmd.Stdin = strings.NewReader(o.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A grandchild that keeps the pipes open (an autostarted daemon does
	// not: it logs to a file) must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	setDeathSignal(cmd)
	err := cmd.Run()

	r := result{
		cmdline: filepath.Base(name) + " " + strings.Join(args, " "),
		stdout:  stdout.String(), stderr: stderr.String(),
	}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.code, err = -1, context.DeadlineExceeded
	case err == nil:
	case errors.As(err, &exitErr):
		r.code, err = exitErr.ExitCode(), nil
	default:
		r.code = -1
	}
	r.secretStdout = o.secretStdout && r.code == 0
	if !r.secretStdout {
		record(label+": "+r.cmdline+" (stdout)", r.stdout)
	}
	record(label+": "+r.cmdline+" (stderr)", r.stderr)
	return r, err
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t testing.TB, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

// cleanEnv is the test process's environment without anything that
// would point a client or the daemon somewhere other than where the test
// points it (a developer's DOCKER_CONFIG, CONNECTORD_SOCKET, proxies...).
func cleanEnv() []string {
	drop := []string{
		"HOME=", "TMPDIR=", "DOCKER_", "CONNECTORD_", "XDG_", "REGISTRY_AUTH_FILE=",
		"SSL_CERT_", "CONTAINERS_", "REGCTL_", "ORAS_", "CI=",
		"HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=", "NO_PROXY=",
		"http_proxy=", "https_proxy=", "all_proxy=", "no_proxy=",
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return slices.ContainsFunc(drop, func(p string) bool { return strings.HasPrefix(kv, p) })
	})
	// A binary built with -race sleeps a second at exit by default, to let
	// other goroutines report; the helper runs for every client request.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return setEnv(env, "GORACE", gorace)
}

// setEnv returns env with every KEY=... replaced by KEY=value.
func setEnv(env []string, key, value string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
	return append(env, key+"="+value)
}

// unsetEnv returns env without KEY.
func unsetEnv(env []string, key string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

func mkdir(t testing.TB, path string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ------------------------------------------------------------------ daemon

// connectorConf is one [[connector]] of type "docker" in the daemon's
// config.
type connectorConf struct {
	name, resourceID, username, password string
	// passwordFrom: "" writes the password literally; "file" writes it to
	// a file and configures { file = ... }; "env" puts it in the daemon's
	// environment and configures { env = ... }.
	passwordFrom string
}

type daemonOpts struct {
	connectors []connectorConf
	// store and socket reuse another daemon's paths (a restart); "" makes
	// new ones.
	store, socket string
}

// daemon is a `connectord serve` child process.
type daemon struct {
	socket, store, config, logPath string

	cmd     *exec.Cmd
	done    chan struct{}
	stopped bool
}

// startDaemon runs `connectord serve --config CFG --socket SOCK --store
// STORE --log-level debug` (debug, so the secret scan sees everything the
// daemon can log), waits until `connectord status` answers, and at cleanup
// stops it with SIGTERM, asserting that it exits 0 and removes its socket.
func startDaemon(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	dir := t.TempDir()
	// The log is not in the config's directory: the daemon watches that
	// directory for changes, and at debug level every reload it triggers
	// writes the log again.
	d := &daemon{socket: o.socket, store: o.store, config: filepath.Join(dir, "etc", "config.toml"), logPath: filepath.Join(mkdir(t, filepath.Join(dir, "log")), "daemon.log")}
	if d.socket == "" {
		d.socket = filepath.Join(testenv.ShortTempDir(t), "connectord.sock")
	}
	if d.store == "" {
		d.store = filepath.Join(dir, "state", "connectord", "credentials.json")
	}
	env := setEnv(cleanEnv(), "HOME", mkdir(t, filepath.Join(dir, "home")))

	var cfg strings.Builder
	cfg.WriteString("version = 1\n")
	for i, c := range o.connectors {
		fmt.Fprintf(&cfg, "\n[[connector]]\nname = %s\ntype = \"docker\"\nresource_id = %s\n\n[connector.config]\nusername = %s\n",
			tomlString(c.name), tomlString(c.resourceID), tomlString(c.username))
		switch c.passwordFrom {
		case "":
			fmt.Fprintf(&cfg, "password = %s\n", tomlString(c.password))
		case "file":
			p := writeFile(t, filepath.Join(dir, "secrets", fmt.Sprintf("password-%d", i)), c.password+"\n")
			fmt.Fprintf(&cfg, "password = { file = %s }\n", tomlString(p))
		case "env":
			name := fmt.Sprintf("E2E_CONNECTOR_%d_PASSWORD", i)
			env = setEnv(env, name, c.password)
			fmt.Fprintf(&cfg, "password = { env = %s }\n", tomlString(name))
		default:
			t.Fatalf("passwordFrom %q", c.passwordFrom)
		}
	}
	writeFile(t, d.config, cfg.String())

	logFile, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	d.cmd = exec.Command(filepath.Join(binDir, "connectord"), "serve",
		"--config", d.config, "--socket", d.socket, "--store", d.store, "--log-level", "debug")
	d.cmd.Env = env
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	setDeathSignal(d.cmd)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting connectord serve: %v", err)
	}
	d.done = make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })

	// Ready when the CLI gets an answer over the socket.
	statusEnv := setEnv(env, "CONNECTORD_NO_AUTOSTART", "1")
	guard := time.After(daemonStartGuard)
	for {
		r := run(t, runOpts{env: statusEnv}, filepath.Join(binDir, "connectord"), "status", "--socket", d.socket)
		if r.code == 0 {
			break
		}
		select {
		case <-d.done:
			t.Fatalf("connectord serve exited with %v before answering; log:\n%s\nlast status attempt:\n%s", d.cmd.ProcessState, d.log(), r)
		case <-guard:
			t.Fatalf("connectord serve did not answer on %s within %v; log:\n%s\nlast status attempt:\n%s", d.socket, daemonStartGuard, d.log(), r)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return d
}

func tomlString(s string) string {
	b, err := json.Marshal(s) // a JSON string of printable ASCII is a TOML basic string
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (d *daemon) log() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("[reading %s: %v]", d.logPath, err)
	}
	return string(b)
}

// crash kills the daemon with SIGKILL, as a crash or the OOM killer
// would: it removes nothing, so its socket file stays behind.
func (d *daemon) crash(t *testing.T) {
	t.Helper()
	if d.stopped {
		t.Fatal("crash: the daemon is not running")
	}
	d.stopped = true
	defer func() { record(t.Name()+": daemon log "+d.logPath, d.log()) }()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL to connectord serve: %v", err)
	}
	<-d.done
}

// stop sends SIGTERM and asserts a clean exit: status 0 and no socket file
// left. It records the daemon's log for the secret scan. Calling it again
// does nothing.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.stopped {
		return
	}
	d.stopped = true
	defer func() { record(t.Name()+": daemon log "+d.logPath, d.log()) }()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGTERM to connectord serve: %v", err)
	}
	select {
	case <-d.done:
	case <-time.After(daemonStopGuard):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("connectord serve did not exit within %v of SIGTERM; killed it. log:\n%s", daemonStopGuard, d.log())
		return
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("connectord serve exited %d after SIGTERM, want 0 (66 is a data race); log:\n%s", code, d.log())
	}
	if _, err := os.Lstat(d.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("connectord serve left its socket %s behind (lstat: %v)", d.socket, err)
	}
	if t.Failed() {
		t.Logf("connectord serve log (%s):\n%s", d.logPath, d.log())
	}
}

// ----------------------------------------------------------------- clients

// dockerConf is the config.json a client reads from DOCKER_CONFIG.
type dockerConf struct {
	// credsStore sets "credsStore": "connector" (crane, oras, regctl,
	// docker).
	credsStore bool
	// credHelpers maps each of these hosts to "connector" (skopeo and
	// podman honour only credHelpers).
	credHelpers []string
}

// client is a private environment for client processes: its own HOME,
// DOCKER_CONFIG, XDG directories, TMPDIR and working directory, pointed at
// one daemon.
type client struct {
	t            *testing.T
	dir          string // root of everything below
	home         string
	dockerConfig string // the DOCKER_CONFIG directory
	work         string // working directory of every command
	runtimeDir   string // XDG_RUNTIME_DIR
	env          []string
}

// newClient builds the environment. socket is the daemon's (commands get
// CONNECTORD_SOCKET and CONNECTORD_NO_AUTOSTART=1); regs are the
// registries it talks to: the CAs of the TLS ones become SSL_CERT_FILE
// (crane, oras and regctl honour it).
func newClient(t *testing.T, socket string, dc dockerConf, regs ...*testenv.Registry) *client {
	t.Helper()
	dir := t.TempDir()
	c := &client{
		t: t, dir: dir,
		home:         mkdir(t, filepath.Join(dir, "home")),
		dockerConfig: mkdir(t, filepath.Join(dir, "docker")),
		work:         mkdir(t, filepath.Join(dir, "work")),
		// Must exist: containers/image (skopeo, podman) otherwise warns
		// and falls back to /run/containers/$UID.
		runtimeDir: mkdir(t, filepath.Join(dir, "run")),
	}
	cfg := map[string]any{"auths": map[string]any{}}
	if dc.credsStore {
		cfg["credsStore"] = "connector"
	}
	if len(dc.credHelpers) > 0 {
		h := map[string]string{}
		for _, host := range dc.credHelpers {
			h[host] = "connector"
		}
		cfg["credHelpers"] = h
	}
	b, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(c.dockerConfig, "config.json"), string(b)+"\n")

	env := cleanEnv()
	env = setEnv(env, "PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	env = setEnv(env, "HOME", c.home)
	env = setEnv(env, "DOCKER_CONFIG", c.dockerConfig)
	env = setEnv(env, "CONNECTORD_SOCKET", socket)
	env = setEnv(env, "CONNECTORD_NO_AUTOSTART", "1")
	env = setEnv(env, "XDG_RUNTIME_DIR", c.runtimeDir)
	env = setEnv(env, "XDG_STATE_HOME", mkdir(t, filepath.Join(dir, "state")))
	env = setEnv(env, "XDG_CONFIG_HOME", mkdir(t, filepath.Join(dir, "config")))
	env = setEnv(env, "XDG_CACHE_HOME", mkdir(t, filepath.Join(dir, "cache")))
	env = setEnv(env, "XDG_DATA_HOME", mkdir(t, filepath.Join(dir, "data")))
	env = setEnv(env, "TMPDIR", mkdir(t, filepath.Join(dir, "tmp")))
	var cas []byte
	for _, r := range regs {
		if r.CAFile == "" {
			continue
		}
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, pem...)
	}
	if len(cas) > 0 {
		env = setEnv(env, "SSL_CERT_FILE", writeFile(t, filepath.Join(dir, "ca-bundle.pem"), string(cas)))
	}
	c.env = env
	return c
}

// run runs a command in the client's environment and working directory.
func (c *client) run(name string, args ...string) result {
	c.t.Helper()
	return run(c.t, runOpts{env: c.env, dir: c.work}, name, args...)
}

// helper runs docker-credential-connector VERB with stdin, as a client
// would. The stdout of a successful `get` carries the password and is
// excluded from the secret scan (see runOpts.secretStdout).
func (c *client) helper(verb, stdin string) result {
	c.t.Helper()
	return run(c.t, runOpts{env: c.env, dir: c.work, stdin: stdin, secretStdout: verb == "get"}, filepath.Join(binDir, helperName), verb)
}

// connectord runs the connectord CLI.
func (c *client) connectord(args ...string) result {
	c.t.Helper()
	return c.run(filepath.Join(binDir, "connectord"), args...)
}

// helperCreds is the helper's answer to get.
type helperCreds struct {
	ServerURL, Username, Secret string
}

// getCreds runs the helper's get for serverURL and decodes its answer,
// failing the test unless it succeeds.
func (c *client) getCreds(serverURL string) helperCreds {
	c.t.Helper()
	r := c.helper("get", serverURL+"\n")
	if r.code != 0 {
		c.t.Fatalf("helper get %s failed:\n%s", serverURL, r)
	}
	var hc helperCreds
	if err := json.Unmarshal([]byte(r.stdout), &hc); err != nil {
		c.t.Fatalf("helper get %s: stdout is not the helper's JSON: %v", serverURL, err)
	}
	return hc
}

// listEntry is one element of `connectord list --json`.
type listEntry struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	ResourceID string         `json:"resource_id"`
	Origin     string         `json:"origin"`
	Config     map[string]any `json:"config"`
}

// list runs `connectord list --json --socket SOCK`.
func (c *client) list(socket string) []listEntry {
	c.t.Helper()
	r := mustSucceed(c.t, c.connectord("list", "--json", "--socket", socket))
	var l []listEntry
	if err := json.Unmarshal([]byte(r.stdout), &l); err != nil {
		c.t.Fatalf("connectord list --json: %v\n%s", err, r)
	}
	return l
}

func findEntry(l []listEntry, resourceID string) (listEntry, bool) {
	i := slices.IndexFunc(l, func(e listEntry) bool { return e.ResourceID == resourceID })
	if i < 0 {
		return listEntry{}, false
	}
	return l[i], true
}

// ----------------------------------------------------------- registries

// isTLS reports whether r serves HTTPS.
func isTLS(r *testenv.Registry) bool { return r.CAFile != "" }

// craneFlags: crane speaks plain HTTP only with --insecure; for TLS it
// trusts SSL_CERT_FILE.
func craneFlags(r *testenv.Registry) []string {
	if isTLS(r) {
		return nil
	}
	return []string{"--insecure"}
}

// orasFlags: oras needs --plain-http for HTTP; for TLS it trusts
// SSL_CERT_FILE.
func orasFlags(r *testenv.Registry) []string {
	if isTLS(r) {
		return nil
	}
	return []string{"--plain-http"}
}

// containersFlags are skopeo's and podman's: they ignore SSL_CERT_FILE
// and take the CA directory with --cert-dir; plain HTTP needs
// --tls-verify=false.
func containersFlags(r *testenv.Registry) []string {
	if isTLS(r) {
		return []string{"--cert-dir", r.CertDir}
	}
	return []string{"--tls-verify=false"}
}

// is401 reports whether a client's output carries the registry's 401:
// "UNAUTHORIZED", "unauthorized" or a standalone 401 (never a "401" inside
// a hex digest).
func is401(out string) bool { return unauthorized.MatchString(out) }

var unauthorized = regexp.MustCompile(`(?i)unauthorized|\b401\b`)
