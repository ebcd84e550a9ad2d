package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	// registryStartTimeout bounds one attempt to start docker-registry.
	registryStartTimeout = 10 * time.Second
	// registryStartAttempts is how often StartRegistry picks a new port when
	// another process took the one it chose.
	registryStartAttempts = 5
	// registryStopTimeout is how long the registry gets to exit on SIGTERM.
	registryStopTimeout = 5 * time.Second
	// idHeader carries a per-registry random id in every response, so the
	// readiness check cannot be answered by some other server that won a
	// race for the port.
	idHeader = "X-Connectord-Testenv"
	// htpasswdRealm is the realm of the Basic challenge.
	htpasswdRealm = "connectord-testenv"
)

// RegistryOptions configures StartRegistry.
type RegistryOptions struct {
	// Users are the htpasswd users (name → password), stored as bcrypt
	// hashes. Nil or empty means an open registry without auth.
	Users map[string]string
	// TLS serves HTTPS with a server certificate for 127.0.0.1, ::1 and
	// localhost, signed by a CA made for this registry.
	TLS bool
	// TokenAuth puts the registry behind a token server (`auth: token`)
	// instead of htpasswd: docker/distribution's contrib token-server,
	// which checks Users from its own htpasswd file, grants each user
	// only the repositories under its own name (alice/...) plus the
	// catalog, and issues refresh tokens to clients that ask with
	// offline_token=true. Needs Users. See StartTokenRegistry.
	TokenAuth bool
}

// Registry is a running docker-registry on loopback.
type Registry struct {
	Host    string // "127.0.0.1:PORT"
	URL     string // "http://HOST" or "https://HOST"
	CAFile  string // PEM of the CA when TLS, else ""
	CertDir string // when TLS, a directory holding ca.crt (skopeo/podman --cert-dir), else ""
	Dir     string // the registry's temp dir: config, storage, htpasswd, log
	// TokenRealm and TokenService are the bearer challenge's realm
	// ("http(s)://localhost:PORT/token/") and service, with TokenAuth;
	// else "".
	TokenRealm   string
	TokenService string

	htpasswd string // "" for an open registry; the token server's with TokenAuth
	token    *tokenServer
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been waited for
}

// StartRegistry runs Debian's `docker-registry serve` on a free loopback port
// and waits until GET /v2/ answers 200 or 401. The registry keeps its
// storage, config and log under a t.TempDir; t.Cleanup stops it (SIGTERM,
// then SIGKILL) and, if the test failed, logs the tail of its log.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	bin := Tool(t, "docker-registry")
	dir := t.TempDir()
	r := &Registry{Dir: dir, logPath: filepath.Join(dir, "registry.log")}

	var tlsCert, tlsKey string
	var roots *x509.CertPool
	if opts.TLS {
		var err error
		tlsCert, tlsKey, r.CertDir, roots, err = writeTLSFiles(dir)
		if err != nil {
			t.Fatalf("testenv: registry TLS material: %v", err)
		}
		r.CAFile = filepath.Join(r.CertDir, "ca.crt")
	}
	if len(opts.Users) > 0 {
		r.htpasswd = filepath.Join(dir, "htpasswd")
		if err := WriteHtpasswd(r.htpasswd, opts.Users); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	authYAML := htpasswdAuth(r.htpasswd)
	if opts.TokenAuth {
		if r.htpasswd == "" {
			t.Fatalf("testenv: TokenAuth needs Users")
		}
		// Started first: the registry's config names its realm.
		r.token = startTokenServer(t, dir, r.htpasswd, tlsCert, tlsKey, roots)
		r.TokenRealm, r.TokenService = r.token.realm, tokenService
		authYAML = tokenAuth(r.token.realm, tokenService, tokenIssuer, r.token.certFile)
	}
	storage := filepath.Join(dir, "storage")
	if err := os.Mkdir(storage, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	secret, id := randomHex(t, 16), randomHex(t, 8)

	client := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: roots},
		},
	}
	defer client.CloseIdleConnections()

	for attempt := 1; ; attempt++ {
		port := freePort(t)
		r.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		r.URL = "http://" + r.Host
		if opts.TLS {
			r.URL = "https://" + r.Host
		}
		cfg := registryConfig(r.Host, storage, secret, id, tlsCert, tlsKey, authYAML)
		cfgPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		err := r.start(bin, cfgPath)
		if err != nil {
			t.Fatalf("testenv: starting docker-registry: %v", err)
		}
		err = r.waitReady(client, id)
		if err == nil {
			break
		}
		r.stop()
		logText := r.LogText()
		if errors.Is(err, errExited) && strings.Contains(logText, "address already in use") && attempt < registryStartAttempts {
			t.Logf("testenv: docker-registry lost the race for port %d, retrying", port)
			continue
		}
		t.Fatalf("testenv: docker-registry on %s: %v\nconfig %s:\n%s\nlog %s:\n%s",
			r.Host, err, cfgPath, cfg, r.logPath, tail(logText, 40))
	}

	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("testenv: docker-registry %s log (%s), tail:\n%s", r.Host, r.logPath, tail(r.LogText(), 40))
		}
	})
	return r
}

// htpasswdAuth is the registry's auth section for htpasswd, or "" for an
// open registry.
func htpasswdAuth(htpasswd string) string {
	if htpasswd == "" {
		return ""
	}
	return fmt.Sprintf(`auth:
  htpasswd:
    realm: %s
    path: %s
`, yamlString(htpasswdRealm), yamlString(htpasswd))
}

// yamlString writes s as a JSON string, which YAML reads as a
// double-quoted scalar.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var errExited = errors.New("docker-registry exited")

func (r *Registry) start(bin, cfgPath string) error {
	logFile, err := os.Create(r.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Dir = r.Dir
	cmd.Env = registryEnv(os.Environ())
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	r.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	return nil
}

// waitReady polls GET /v2/ until our registry (recognised by its id header)
// answers 200 or 401.
func (r *Registry) waitReady(client *http.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), registryStartTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-r.done:
			return fmt.Errorf("%w: %s", errExited, r.cmd.ProcessState)
		default:
		}
		resp, err := r.getV2(ctx, client)
		if err == nil {
			switch {
			case resp.Header.Get(idHeader) != id:
				last = fmt.Errorf("GET /v2/: %s from a server that is not this registry", resp.Status)
			case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized:
				return nil
			default:
				last = fmt.Errorf("GET /v2/: %s", resp.Status)
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", registryStartTimeout, last)
		case <-r.done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// getV2 sends GET /v2/, abandoning it as soon as the registry exits (a
// server that took the port first might accept and never answer).
func (r *Registry) getV2(ctx context.Context, client *http.Client) (*http.Response, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL+"/v2/", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	// The body is tiny; read it before cancel tears the request down.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp, nil
}

// stop ends the registry process: SIGTERM, then SIGKILL after a grace period.
func (r *Registry) stop() {
	if r.cmd == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(registryStopTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// LogText returns everything the registry has logged so far.
func (r *Registry) LogText() string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("[testenv: reading registry log: %v]", err)
	}
	return string(b)
}

// SetUsers replaces the registry's htpasswd users. The file is replaced
// atomically and the registry re-reads it on its next authenticated request,
// without a restart. The registry must have been started with users. With
// TokenAuth the file is the token server's, which re-reads it the same way.
func (r *Registry) SetUsers(t testing.TB, users map[string]string) {
	t.Helper()
	if r.htpasswd == "" {
		t.Fatalf("testenv: SetUsers on an open registry: start it with RegistryOptions.Users to enable htpasswd auth")
	}
	if err := WriteHtpasswd(r.htpasswd, users); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// ClientEnv returns a copy of base for client processes that talk to r: with
// TLS it sets SSL_CERT_FILE to r.CAFile (honoured by crane, oras and regctl;
// skopeo and podman need --cert-dir r.CertDir instead).
func (r *Registry) ClientEnv(base []string) []string {
	env := slices.Clone(base)
	if r.CAFile != "" {
		env = setEnv(env, "SSL_CERT_FILE", r.CAFile)
	}
	return env
}

// WriteHtpasswd writes users (name → password) to path as bcrypt htpasswd
// entries, replacing the file atomically. The new file always gets a later
// modification time than the one it replaces, because docker-registry
// notices changes by modification time alone.
func WriteHtpasswd(path string, users map[string]string) error {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(users)) {
		if name == "" || strings.ContainsAny(name, ":\r\n") || strings.HasPrefix(name, "#") || strings.TrimSpace(name) != name {
			return fmt.Errorf("htpasswd: invalid user name %q", name)
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.MinCost)
		if err != nil {
			return fmt.Errorf("htpasswd: hashing password of %q: %w", name, err)
		}
		fmt.Fprintf(&b, "%s:%s\n", name, hash)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".htpasswd-*")
	if err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("htpasswd: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	if old, err := os.Stat(path); err == nil {
		// File timestamps come from a coarse clock: two writes in the same
		// tick would share an mtime and the registry would miss the second.
		if fi, err := os.Stat(tmp.Name()); err == nil && !fi.ModTime().After(old.ModTime()) {
			later := old.ModTime().Add(time.Millisecond)
			if err := os.Chtimes(tmp.Name(), later, later); err != nil {
				return fmt.Errorf("htpasswd: %w", err)
			}
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("htpasswd: %w", err)
	}
	return nil
}

// registryConfig renders docker-registry's YAML configuration. Strings are
// written as JSON strings, which YAML reads as double-quoted scalars.
// authYAML is the rendered auth section ("" for an open registry).
func registryConfig(addr, storage, secret, id, tlsCert, tlsKey, authYAML string) string {
	q := yamlString
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: %s
  secret: %s
  headers:
    X-Content-Type-Options: [nosniff]
    %s: [%s]
`, q(storage), q(addr), q(secret), idHeader, q(id))
	if tlsCert != "" {
		fmt.Fprintf(&b, `  tls:
    certificate: %s
    key: %s
`, q(tlsCert), q(tlsKey))
	}
	b.WriteString(authYAML)
	return b.String()
}

// registryEnv drops REGISTRY_* variables, which would override the config.
func registryEnv(base []string) []string {
	return slices.DeleteFunc(slices.Clone(base), func(kv string) bool {
		return strings.HasPrefix(kv, "REGISTRY_")
	})
}

// setEnv returns env with every KEY=... entry replaced by one KEY=value.
func setEnv(env []string, key, value string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, key+"=")
	})
	return append(env, key+"="+value)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return hex.EncodeToString(b)
}
