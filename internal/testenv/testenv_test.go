package testenv

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpClient returns a client that trusts r's CA (if any) and no proxy.
func httpClient(t *testing.T, r *Registry) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{}}
	if r.CAFile != "" {
		pemData, err := os.ReadFile(r.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			t.Fatalf("no certificate in %s", r.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// v2Status returns the status of GET base/v2/, with basic auth unless user is "".
func v2Status(t *testing.T, c *http.Client, base, user, pass string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v2/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s/v2/: %v", base, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusUnauthorized {
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
			t.Errorf("401 with WWW-Authenticate %q, want a Basic challenge", got)
		}
	}
	return resp.StatusCode
}

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRegistryHtpasswd(t *testing.T) {
	t.Parallel()
	r := StartRegistry(t, RegistryOptions{Users: map[string]string{"alice": "alice-pass"}})
	if !strings.HasPrefix(r.Host, "127.0.0.1:") || r.URL != "http://"+r.Host {
		t.Fatalf("Host %q URL %q", r.Host, r.URL)
	}
	if r.CAFile != "" || r.CertDir != "" {
		t.Errorf("plain HTTP registry has CAFile %q CertDir %q", r.CAFile, r.CertDir)
	}
	c := httpClient(t, r)

	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"no auth", "", "", http.StatusUnauthorized},
		{"right password", "alice", "alice-pass", http.StatusOK},
		{"wrong password", "alice", "nope", http.StatusUnauthorized},
		{"unknown user", "bob", "bob-pass", http.StatusUnauthorized},
	} {
		if got := v2Status(t, c, r.URL, tc.user, tc.pass); got != tc.want {
			t.Errorf("%s: GET /v2/ = %d, want %d", tc.name, got, tc.want)
		}
	}

	// Replace alice by bob: the registry must pick the file up while running.
	r.SetUsers(t, map[string]string{"bob": "bob-pass"})
	eventually(t, "bob accepted after SetUsers", func() bool {
		return v2Status(t, c, r.URL, "bob", "bob-pass") == http.StatusOK
	})
	if got := v2Status(t, c, r.URL, "alice", "alice-pass"); got != http.StatusUnauthorized {
		t.Errorf("alice after SetUsers without her: %d, want 401", got)
	}

	// Two changes in quick succession (same coarse mtime tick) must both land.
	r.SetUsers(t, map[string]string{"carol": "carol-pass"})
	if got := v2Status(t, c, r.URL, "carol", "carol-pass"); got != http.StatusOK {
		t.Errorf("carol right after SetUsers: %d, want 200", got)
	}
	r.SetUsers(t, map[string]string{"dave": "dave-pass"})
	if got := v2Status(t, c, r.URL, "dave", "dave-pass"); got != http.StatusOK {
		t.Errorf("dave right after a second quick SetUsers: %d, want 200", got)
	}
	if got := v2Status(t, c, r.URL, "carol", "carol-pass"); got != http.StatusUnauthorized {
		t.Errorf("carol after being replaced: %d, want 401", got)
	}

	if log := r.LogText(); !strings.Contains(log, "listening on") {
		t.Errorf("registry log lacks %q:\n%s", "listening on", log)
	}
}

func TestRegistryOpen(t *testing.T) {
	t.Parallel()
	r := StartRegistry(t, RegistryOptions{})
	c := httpClient(t, r)
	if got := v2Status(t, c, r.URL, "", ""); got != http.StatusOK {
		t.Errorf("open registry GET /v2/ = %d, want 200", got)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "htpasswd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open registry has an htpasswd file (stat: %v)", err)
	}
}

func TestRegistryTLS(t *testing.T) {
	t.Parallel()
	r := StartRegistry(t, RegistryOptions{TLS: true, Users: map[string]string{"alice": "alice-pass"}})
	if r.URL != "https://"+r.Host {
		t.Fatalf("URL %q, want https://%s", r.URL, r.Host)
	}
	if got := filepath.Join(r.CertDir, "ca.crt"); r.CAFile != got {
		t.Errorf("CAFile %q, want %q", r.CAFile, got)
	}
	entries, err := os.ReadDir(r.CertDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "ca.crt" {
			t.Errorf("CertDir holds %s; skopeo/podman would read it", e.Name())
		}
	}

	c := httpClient(t, r)
	if got := v2Status(t, c, r.URL, "alice", "alice-pass"); got != http.StatusOK {
		t.Errorf("HTTPS GET /v2/ with the CA = %d, want 200", got)
	}
	if got := v2Status(t, c, r.URL, "", ""); got != http.StatusUnauthorized {
		t.Errorf("HTTPS GET /v2/ without auth = %d, want 401", got)
	}
	// The certificate also names localhost.
	port := strings.TrimPrefix(r.Host, "127.0.0.1:")
	if got := v2Status(t, c, "https://localhost:"+port, "alice", "alice-pass"); got != http.StatusOK {
		t.Errorf("HTTPS GET https://localhost:%s/v2/ = %d, want 200", port, got)
	}

	// Without the CA, verification must fail.
	plain := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer plain.CloseIdleConnections()
	resp, err := plain.Get(r.URL + "/v2/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s/v2/ without the CA succeeded (%s)", r.URL, resp.Status)
	}
	var unknownCA x509.UnknownAuthorityError
	if !errors.As(err, &unknownCA) {
		t.Errorf("GET without the CA: %v, want x509.UnknownAuthorityError", err)
	}

	// Plain HTTP to the TLS port is no answer either.
	if resp, err := plain.Get("http://" + r.Host + "/v2/"); err == nil {
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: %s, want 400", resp.Status)
		}
		resp.Body.Close()
	}

	env := r.ClientEnv([]string{"A=1", "SSL_CERT_FILE=/elsewhere"})
	if got := strings.Join(env, " "); got != "A=1 SSL_CERT_FILE="+r.CAFile {
		t.Errorf("ClientEnv = %q", got)
	}
}

func TestClientEnvPlain(t *testing.T) {
	t.Parallel()
	r := &Registry{Host: "127.0.0.1:1", URL: "http://127.0.0.1:1"}
	base := []string{"A=1", "B=2"}
	env := r.ClientEnv(base)
	if strings.Join(env, " ") != "A=1 B=2" {
		t.Errorf("ClientEnv = %q", env)
	}
	env[0] = "changed"
	if base[0] != "A=1" {
		t.Error("ClientEnv did not copy base")
	}
}

func TestSeedImage(t *testing.T) {
	t.Parallel()
	crane := Tool(t, "crane")
	for _, tc := range []struct {
		name       string
		opts       RegistryOptions
		user, pass string
	}{
		{"htpasswd over HTTP", RegistryOptions{Users: map[string]string{"alice": "alice-pass"}}, "alice", "alice-pass"},
		{"open over HTTP", RegistryOptions{}, "", ""},
		{"htpasswd over TLS", RegistryOptions{TLS: true, Users: map[string]string{"alice": "alice-pass"}}, "alice", "alice-pass"},
		{"open over TLS", RegistryOptions{TLS: true}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := StartRegistry(t, tc.opts)
			const repo, tag = "team/app", "v1"
			digest := r.SeedImage(t, repo, tag, tc.user, tc.pass)

			cfgDir := filepath.Join(t.TempDir(), "docker")
			if err := WriteDockerConfig(cfgDir, r.Host, tc.user, tc.pass); err != nil {
				t.Fatal(err)
			}
			env := setEnv(r.ClientEnv(os.Environ()), "DOCKER_CONFIG", cfgDir)
			var insecure []string
			if !tc.opts.TLS {
				insecure = []string{"--insecure"}
			}
			ref := r.Host + "/" + repo + ":" + tag

			stdout, stderr, code := Run(t, env, "", crane, append([]string{"manifest", ref}, insecure...)...)
			if code != 0 {
				t.Fatalf("crane manifest %s: exit %d\n%s", ref, code, stderr)
			}
			sum := sha256.Sum256([]byte(stdout))
			if got := "sha256:" + hex.EncodeToString(sum[:]); got != digest {
				t.Errorf("manifest digest %s, SeedImage returned %s", got, digest)
			}
			var m struct {
				Layers []struct{ Digest string } `json:"layers"`
			}
			if err := json.Unmarshal([]byte(stdout), &m); err != nil {
				t.Fatalf("manifest: %v\n%s", err, stdout)
			}
			if len(m.Layers) != 1 {
				t.Errorf("manifest has %d layers, want 1", len(m.Layers))
			}

			// The layer really holds the seed file, naming repo and tag.
			stdout, stderr, code = Run(t, env, "", crane, append([]string{"export", ref, "-"}, insecure...)...)
			if code != 0 {
				t.Fatalf("crane export %s: exit %d\n%s", ref, code, stderr)
			}
			if got := tarFile(t, []byte(stdout), SeedFile); got != SeedContent(repo, tag) ||
				!strings.Contains(got, repo) || !strings.Contains(got, tag) {
				t.Errorf("%s in the image = %q, want %q", SeedFile, got, SeedContent(repo, tag))
			}

			if tc.user != "" {
				// The registry really enforces auth: without credentials crane is refused.
				empty := filepath.Join(t.TempDir(), "empty")
				if err := WriteDockerConfig(empty, r.Host, "", ""); err != nil {
					t.Fatal(err)
				}
				env := setEnv(r.ClientEnv(os.Environ()), "DOCKER_CONFIG", empty)
				_, stderr, code := Run(t, env, "", crane, append([]string{"digest", ref}, insecure...)...)
				if code == 0 || !strings.Contains(stderr, "UNAUTHORIZED") {
					t.Errorf("crane digest without credentials: exit %d, stderr %q; want a failure with UNAUTHORIZED", code, stderr)
				}
			}
		})
	}
}

// tarFile returns the content of name in the tar archive data.
func tarFile(t *testing.T, data []byte, name string) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s not in the archive", name)
		}
		if err != nil {
			t.Fatalf("reading archive: %v", err)
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

func TestWriteHtpasswd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	if err := WriteHtpasswd(path, map[string]string{"bob": "b", "alice": "a"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "alice:$2a$04$") || !strings.HasPrefix(lines[1], "bob:$2a$04$") {
		t.Errorf("htpasswd =\n%s\nwant sorted bcrypt (cost 4) entries for alice and bob", data)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}

	// Every rewrite gets a later mtime, however quickly it follows.
	prev := fi.ModTime()
	for i := range 5 {
		if err := WriteHtpasswd(path, map[string]string{"u": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().After(prev) {
			t.Fatalf("rewrite %d: mtime %v not after %v", i, fi.ModTime(), prev)
		}
		prev = fi.ModTime()
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	for _, bad := range []string{"", "a:b", "a\nb", "#c", " a"} {
		if err := WriteHtpasswd(path, map[string]string{bad: "x"}); err == nil {
			t.Errorf("user name %q accepted", bad)
		}
	}
	if err := WriteHtpasswd(path, map[string]string{"long": strings.Repeat("x", 73)}); err == nil {
		t.Error("a 73-byte password (beyond bcrypt's 72) was accepted")
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	sh := Tool(t, "sh")
	stdout, stderr, code := Run(t, []string{"X=from-env"}, "from-stdin\n", sh, "-c", `read line; echo "$line $X"; echo oops >&2; exit 3`)
	if stdout != "from-stdin from-env\n" || stderr != "oops\n" || code != 3 {
		t.Errorf("Run = %q, %q, %d", stdout, stderr, code)
	}
	// Without stdin the command reads EOF, not the test's stdin.
	stdout, _, code = Run(t, []string{}, "", sh, "-c", `cat; echo done`)
	if stdout != "done\n" || code != 0 {
		t.Errorf("Run without stdin = %q, %d", stdout, code)
	}
}

func TestShortTempDir(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = ShortTempDir(t)
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("ShortTempDir %s: %v %v", dir, fi, err)
		}
		// Room for a socket name under the 108-byte sun_path limit.
		if sock := filepath.Join(dir, "connectord", "connectord.sock"); len(sock) >= 108-20 {
			t.Errorf("socket path %q is %d bytes", sock, len(sock))
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after cleanup (stat: %v)", dir, err)
	}
}

func TestToolFound(t *testing.T) {
	// Not parallel: t.Setenv.
	if p := Tool(t, "sh"); !filepath.IsAbs(p) || !isExecutable(p) {
		t.Errorf("Tool(sh) = %q", p)
	}

	// A tool only in $GOPATH/bin, not on PATH, is found without running go.
	gopath := t.TempDir()
	bin := filepath.Join(gopath, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(bin, "testenv-fake-tool")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", "/nonexistent"+string(os.PathListSeparator)+gopath)
	if p := Tool(t, "testenv-fake-tool"); p != fake {
		t.Errorf("Tool(testenv-fake-tool) = %q, want %q", p, fake)
	}
}

const missingTool = "connectord-testenv-no-such-tool"

func TestToolMissingSkipsOutsideCI(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv("CI", "")
	var sub *testing.T
	t.Run("missing", func(t *testing.T) {
		sub = t
		p := Tool(t, missingTool)
		t.Errorf("Tool(%q) returned %q instead of skipping", missingTool, p)
	})
	if !sub.Skipped() {
		t.Errorf("Tool on a missing name did not skip the test with CI unset")
	}
}

// recorder is a testing.TB that records Fatalf/Skipf instead of acting on
// the real test. Both end the calling goroutine, like the real ones.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	fatal   string
	skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// callTool runs Tool against a recorder in its own goroutine.
func callTool(t *testing.T, name string) (rec *recorder, returned bool) {
	rec = &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Tool(rec, name)
		returned = true
	}()
	<-done
	return rec, returned
}

func TestToolMissingMessages(t *testing.T) {
	// Not parallel: t.Setenv.
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{
		{"true", true},
		{"", false},
		{"1", false}, // only CI=true turns skips into failures
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			rec, returned := callTool(t, missingTool)
			if returned {
				t.Fatal("Tool returned for a missing tool")
			}
			msg := rec.skipped
			if tc.wantFatal {
				if rec.fatal == "" || rec.skipped != "" {
					t.Fatalf("CI=%q: fatal %q, skipped %q; want a failure", tc.ci, rec.fatal, rec.skipped)
				}
				msg = rec.fatal
			} else if rec.skipped == "" || rec.fatal != "" {
				t.Fatalf("CI=%q: fatal %q, skipped %q; want a skip", tc.ci, rec.fatal, rec.skipped)
			}
			for _, want := range []string{missingTool, InstallCommand} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not name %q", msg, want)
				}
			}
		})
	}
}

func TestSetUsersOnOpenRegistryFails(t *testing.T) {
	t.Parallel()
	r := &Registry{Dir: t.TempDir()}
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.SetUsers(rec, map[string]string{"a": "b"})
	}()
	<-done
	if !strings.Contains(rec.fatal, "open registry") {
		t.Errorf("SetUsers on an open registry: fatal %q", rec.fatal)
	}
}
