package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// dockerEnv is a test's world for configure-docker and import: a daemon
// serving one config connector (lab.example:5000), a docker config dir
// and a PATH that holds (or lacks) the helper.
type dockerEnv struct {
	sock, dockerDir, binDir string
	vars                    map[string]string
}

func newDockerEnv(t *testing.T, withHelper bool) *dockerEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "connectord.toml")
	if err := os.WriteFile(cfg, []byte(connectorTOML("lab", "lab.example:5000", "lab-pass")), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, _ := serveInProcess(t, cfg)
	de := &dockerEnv{sock: sock, dockerDir: filepath.Join(dir, "docker"), binDir: filepath.Join(dir, "bin")}
	if err := os.MkdirAll(de.binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if withHelper {
		// Only its presence is checked here; the real helper runs in
		// servicetest.
		if err := os.WriteFile(filepath.Join(de.binDir, helperBinary), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	de.vars = map[string]string{
		"PATH":              de.binDir + ":/usr/bin:/bin",
		"DOCKER_CONFIG":     de.dockerDir,
		"CONNECTORD_SOCKET": sock,
		"HOME":              dir,
	}
	return de
}

func (de *dockerEnv) path() string { return filepath.Join(de.dockerDir, "config.json") }

func (de *dockerEnv) write(t *testing.T, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(de.dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(de.path(), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(de.path(), mode); err != nil {
		t.Fatal(err)
	}
}

func (de *dockerEnv) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{ctx: t.Context(), stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return de.vars[k] }}
	code = e.run(args)
	return out.String(), errb.String(), code
}

func (de *dockerEnv) backups(t *testing.T) []string {
	t.Helper()
	b, _ := filepath.Glob(de.path() + ".bak-*")
	return b
}

func (de *dockerEnv) config(t *testing.T) (cfg struct {
	CredsStore  string                       `json:"credsStore"`
	CredHelpers map[string]string            `json:"credHelpers"`
	Auths       map[string]map[string]string `json:"auths"`
	PsFormat    string                       `json:"psFormat"`
	Proxies     json.RawMessage              `json:"proxies"`
}) {
	t.Helper()
	data, err := os.ReadFile(de.path())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return cfg
}

func authField(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

func TestConfigureDocker(t *testing.T) {
	t.Parallel()
	const other = `"psFormat": "table {{.ID}}", "proxies": {"default": {"noProxy": "<local>"}}`
	tests := []struct {
		name        string
		initial     string // "" = no file
		mode        os.FileMode
		args        []string
		wantHelpers map[string]string
		wantWarning string
	}{
		{
			name: "new file", args: []string{"--registry", "quay.io"},
			wantHelpers: map[string]string{"lab.example:5000": "connector", "quay.io": "connector"},
		},
		{
			name: "other fields and helpers kept", initial: `{` + other + `, "credHelpers": {"gcr.io": "gcloud"}}`, mode: 0o640,
			wantHelpers: map[string]string{"lab.example:5000": "connector", "gcr.io": "gcloud"},
		},
		{
			name: "docker hub gets both keys", initial: `{` + other + `}`, mode: 0o600, args: []string{"--registry", "index.docker.io"},
			wantHelpers: map[string]string{"lab.example:5000": "connector", "https://index.docker.io/v1/": "connector", "docker.io": "connector"},
		},
		{
			name: "another credsStore replaced with a warning", initial: `{"credsStore": "desktop", ` + other + `}`, mode: 0o600,
			wantHelpers: map[string]string{"lab.example:5000": "connector"},
			wantWarning: `credsStore was "desktop"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			de := newDockerEnv(t, true)
			if tt.initial != "" {
				de.write(t, tt.initial, tt.mode)
			}
			args := append([]string{"configure-docker"}, tt.args...)

			// Dry run: reports, writes nothing.
			out, _, code := de.run(t, append(args, "--dry-run")...)
			if code != 0 || !strings.Contains(out, "would change") {
				t.Fatalf("dry run: exit %d\n%s", code, out)
			}
			if _, err := os.Stat(de.path()); (tt.initial == "") != os.IsNotExist(err) {
				t.Fatalf("dry run touched the file: %v", err)
			}

			out, errOut, code := de.run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(out, `credsStore: "connector"`) {
				t.Errorf("output does not say what changed:\n%s", out)
			}
			if tt.wantWarning != "" && !strings.Contains(errOut, tt.wantWarning) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantWarning, errOut)
			}
			cfg := de.config(t)
			if cfg.CredsStore != "connector" {
				t.Errorf("credsStore %q", cfg.CredsStore)
			}
			for k, v := range tt.wantHelpers {
				if cfg.CredHelpers[k] != v {
					t.Errorf("credHelpers[%s] = %q, want %q (all: %v)", k, cfg.CredHelpers[k], v, cfg.CredHelpers)
				}
			}
			if tt.initial != "" {
				if cfg.PsFormat != "table {{.ID}}" || !strings.Contains(string(cfg.Proxies), "<local>") {
					t.Errorf("other fields lost: %+v", cfg)
				}
				if fi, _ := os.Stat(de.path()); fi.Mode().Perm() != tt.mode {
					t.Errorf("mode %v, want %v", fi.Mode().Perm(), tt.mode)
				}
				if b := de.backups(t); len(b) != 1 {
					t.Errorf("backups %v, want one", b)
				} else if old, _ := os.ReadFile(b[0]); string(old) != tt.initial {
					t.Errorf("backup does not hold the old file:\n%s", old)
				}
			} else if b := de.backups(t); len(b) != 0 {
				t.Errorf("a backup of a file that did not exist: %v", b)
			}

			// Again: nothing changes, no second backup.
			before, _ := os.ReadFile(de.path())
			out, _, code = de.run(t, append(args, "--json")...)
			var rep dockerReport
			if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
				t.Fatalf("second run: exit %d, %v\n%s", code, err, out)
			}
			if rep.Changed || len(rep.Changes) != 0 || rep.Backup != "" {
				t.Errorf("second run changed something: %+v", rep)
			}
			if after, _ := os.ReadFile(de.path()); !bytes.Equal(before, after) {
				t.Error("second run rewrote the file")
			}
			if n := len(de.backups(t)); n > 1 {
				t.Errorf("second run made another backup (%d)", n)
			}
		})
	}
}

func TestConfigureDockerRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		helper     bool
		content    string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no helper on PATH", false, `{"auths": {}}`, nil, exitFail, "docker-credential-connector is not on PATH"},
		{"malformed config", true, `{"auths": {"h": {"auth": "c2VjcmV0"}}`, nil, exitFail, "malformed docker config"},
		{"wrong type", true, `{"credHelpers": []}`, nil, exitFail, "credHelpers"},
		{"bad --registry", true, `{}`, []string{"--registry", "http://a b"}, exitUsage, "invalid registry"},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"configure-docker", "import"} {
			if tt.args != nil && cmd == "import" {
				continue
			}
			t.Run(cmd+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				de := newDockerEnv(t, tt.helper)
				de.write(t, tt.content, 0o600)
				out, errOut, code := de.run(t, append([]string{cmd}, tt.args...)...)
				if code != tt.wantCode || !strings.Contains(errOut, tt.wantStderr) {
					t.Errorf("exit %d, want %d; stderr lacks %q:\n%s%s", code, tt.wantCode, tt.wantStderr, out, errOut)
				}
				if strings.Contains(errOut, "c2VjcmV0") {
					t.Error("the error quotes the file")
				}
				if b, _ := os.ReadFile(de.path()); string(b) != tt.content {
					t.Error("file changed")
				}
				if b := de.backups(t); len(b) != 0 {
					t.Errorf("backups made: %v", b)
				}
			})
		}
	}
}

func TestConfigureDockerDaemonDown(t *testing.T) {
	t.Parallel()
	de := newDockerEnv(t, true)
	de.vars["CONNECTORD_SOCKET"] = filepath.Join(testenv.ShortTempDir(t), "none.sock")
	out, errOut, code := de.run(t, "configure-docker", "--registry", "127.0.0.1:5000")
	if code != 0 || !strings.Contains(errOut, "connectord is not running") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	cfg := de.config(t)
	if cfg.CredsStore != "connector" || cfg.CredHelpers["127.0.0.1:5000"] != "connector" || len(cfg.CredHelpers) != 1 {
		t.Errorf("config %+v", cfg)
	}
	// import needs the daemon and says so.
	_, errOut, code = de.run(t, "import")
	if code != exitFail || !strings.Contains(errOut, "not running") {
		t.Errorf("import without a daemon: exit %d\n%s", code, errOut)
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	de := newDockerEnv(t, true)
	secrets := []string{"bob-pass", "hub-token", "lab-other", "dave-pass"}
	initial := `{
	"auths": {
		"127.0.0.1:5999": {"auth": "` + authField("bob", "bob-pass") + `", "email": "bob@example.com"},
		"https://index.docker.io/v1/": {"identitytoken": "hub-token"},
		"docker.io": {"identitytoken": "hub-token"},
		"lab.example:5000": {"auth": "` + authField("labuser", "lab-other") + `"},
		"fields.example": {"username": "dave", "password": "dave-pass"},
		"quay.io/team/app": {"auth": "` + authField("erin", "erin-pass") + `"},
		"old.example": {}
	},
	"psFormat": "table {{.ID}}",
	"credHelpers": {"gcr.io": "gcloud"}
}`
	secrets = append(secrets, "erin-pass")
	de.write(t, initial, 0o640)

	// Dry run: nothing stored, nothing written, the same report.
	dryOut, _, code := de.run(t, "import", "--dry-run", "--json")
	var dry importReport
	if err := json.Unmarshal([]byte(dryOut), &dry); code != 0 || err != nil {
		t.Fatalf("dry run: exit %d, %v\n%s", code, err, dryOut)
	}
	if b, _ := os.ReadFile(de.path()); string(b) != initial {
		t.Fatal("dry run changed the file")
	}
	c := client.New(de.sock)
	if r, err := c.Do(t.Context(), &ipc.Request{Op: ipc.OpList}); err != nil || len(r.Registries) != 1 {
		t.Fatalf("dry run stored something: %v %v", r, err)
	}

	out, errOut, code := de.run(t, "import", "--json")
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	for _, s := range secrets {
		if strings.Contains(out+errOut+dryOut, s) {
			t.Errorf("output shows the secret %q", s)
		}
	}
	var moved, skipped []string
	for _, m := range rep.Moved {
		moved = append(moved, m.AuthsKey+"="+m.Username)
	}
	for _, s := range rep.Skipped {
		skipped = append(skipped, s.Registry)
	}
	if want := []string{"127.0.0.1:5999=bob", "docker.io=<token>", "fields.example=dave"}; !slices.Equal(moved, want) {
		t.Errorf("moved %v, want %v", moved, want)
	}
	if want := []string{"lab.example:5000", "quay.io/team/app"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v (%+v)", skipped, want, rep.Skipped)
	}
	if !strings.Contains(rep.Skipped[0].Reason, `connector "lab"`) {
		t.Errorf("skip reason %q does not name the connector", rep.Skipped[0].Reason)
	}
	if len(dry.Moved) != len(rep.Moved) || len(dry.Skipped) != len(rep.Skipped) {
		t.Errorf("dry run predicted %d moved, %d skipped; the run did %d, %d", len(dry.Moved), len(dry.Skipped), len(rep.Moved), len(rep.Skipped))
	}
	if rep.Backup == "" || !strings.Contains(errOut, "still holds the plaintext credentials") {
		t.Errorf("backup %q; stderr should warn that it holds the secrets:\n%s", rep.Backup, errOut)
	}

	// The store has them, as docker would hand them over.
	for host, want := range map[string][2]string{
		"127.0.0.1:5999": {"bob", "bob-pass"}, "docker.io": {"<token>", "hub-token"}, "fields.example": {"dave", "dave-pass"},
		"lab.example:5000": {"u-lab", "lab-pass"}, // still the connector's
	} {
		r, err := get(t.Context(), c, host)
		if err != nil || r.Username != want[0] || r.Secret != want[1] {
			t.Errorf("get %s: %v %v, want %s", host, r, err, want[0])
		}
	}

	cfg := de.config(t)
	for _, k := range []string{"127.0.0.1:5999", "https://index.docker.io/v1/", "docker.io", "fields.example"} {
		if e, ok := cfg.Auths[k]; !ok || e["auth"]+e["identitytoken"]+e["password"] != "" {
			t.Errorf("auths[%s] = %v, %v; want it kept without its credential", k, e, ok)
		}
	}
	if cfg.Auths["127.0.0.1:5999"]["email"] != "bob@example.com" {
		t.Error("metadata in an auths entry was dropped")
	}
	if cfg.Auths["lab.example:5000"]["auth"] == "" || cfg.Auths["quay.io/team/app"]["auth"] == "" {
		t.Error("a skipped credential was removed")
	}
	for _, k := range []string{"127.0.0.1:5999", "https://index.docker.io/v1/", "docker.io", "fields.example", "lab.example:5000"} {
		if cfg.CredHelpers[k] != "connector" {
			t.Errorf("credHelpers[%s] = %q", k, cfg.CredHelpers[k])
		}
	}
	if cfg.CredsStore != "connector" || cfg.CredHelpers["gcr.io"] != "gcloud" || cfg.PsFormat != "table {{.ID}}" {
		t.Errorf("config %+v", cfg)
	}
	if fi, _ := os.Stat(de.path()); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}

	// Again: nothing moves, nothing is written.
	before, _ := os.ReadFile(de.path())
	out, errOut, code = de.run(t, "import")
	if code != 0 || strings.Contains(out, "moved") || !strings.Contains(out, "no changes") {
		t.Errorf("second run: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(de.path()); !bytes.Equal(before, after) || len(de.backups(t)) != 1 {
		t.Errorf("second run rewrote the file or made a backup (%v)", de.backups(t))
	}
}
