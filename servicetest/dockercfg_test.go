//go:build linux

package servicetest

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectord/connectord/internal/testenv"
)

// TestConfigureDockerAndImportThenPull: a docker config.json with other
// fields in it, a stale plaintext password for a registry a connector
// serves and a good plaintext login for another; configure-docker and
// import rewrite it; crane and skopeo then pull from both registries with
// nothing but the rewritten file, the helper and the daemon.
func TestConfigureDockerAndImportThenPull(t *testing.T) {
	t.Parallel()
	crane := testenv.Tool(t, "crane")
	skopeo := testenv.Tool(t, "skopeo")
	lab := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{"alice": "alice-pw-6Qz"}})
	priv := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{"bob": "bob-pw-9Xk"}})
	labDigest := lab.SeedImage(t, "team/app", "v1", "alice", "alice-pw-6Qz")
	privDigest := priv.SeedImage(t, "bob/app", "v1", "bob", "bob-pw-9Xk")
	secrets := []string{"alice-pw-6Qz", "bob-pw-9Xk", "stale-pw-1Aa"}

	w := newWorld(t)
	w.writeConfig(t, connectorTOML("lab", lab.Host, "alice", "alice-pw-6Qz"))
	w.serve(t)

	cfgPath := filepath.Join(w.dir, "docker", "config.json")
	b64 := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	initial := `{
	"auths": {
		"` + lab.Host + `": {"auth": "` + b64("alice", "stale-pw-1Aa") + `"},
		"` + priv.Host + `": {"auth": "` + b64("bob", "bob-pw-9Xk") + `", "email": "bob@example.com"}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"psFormat": "table {{.ID}}\t{{.Image}}",
	"proxies": {"default": {"noProxy": "localhost,<local>"}},
	"experimental": "enabled",
	"x-tool-settings": {"retries": 3, "ratio": 0.50}
}
`
	if err := os.WriteFile(cfgPath, []byte(initial), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfgPath, 0o640); err != nil {
		t.Fatal(err)
	}
	authfile := "--authfile=" + cfgPath
	pullable := func(stage string, host, repo, digest string, want bool) {
		t.Helper()
		ref := host + "/" + repo + ":v1"
		out, errOut, code := run(t, w.env, "", crane, "digest", "--insecure", ref)
		if got := code == 0 && strings.TrimSpace(out) == digest; got != want {
			t.Errorf("%s: crane digest %s: exit %d %s%s; want success %v", stage, ref, code, out, errOut, want)
		}
		if !want {
			return
		}
		tarball := filepath.Join(t.TempDir(), "img.tar")
		if _, errOut, code := run(t, w.env, "", crane, "pull", "--insecure", ref, tarball); code != 0 {
			t.Errorf("%s: crane pull %s: exit %d\n%s", stage, ref, code, errOut)
		}
		out, errOut, code = run(t, w.env, "", skopeo, "inspect", authfile, "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref)
		if code != 0 || strings.TrimSpace(out) != digest {
			t.Errorf("%s: skopeo inspect %s: exit %d %s%s", stage, ref, code, out, errOut)
		}
		dest := filepath.Join(t.TempDir(), "img")
		if _, errOut, code := run(t, w.env, "", skopeo, "copy", "--src-authfile", cfgPath, "--src-tls-verify=false", "docker://"+ref, "dir:"+dest); code != 0 {
			t.Errorf("%s: skopeo copy %s: exit %d\n%s", stage, ref, code, errOut)
		}
	}
	// Before: the stale password fails; bob's plaintext login works.
	pullable("before", lab.Host, "team/app", labDigest, false)
	pullable("before", priv.Host, "bob/app", privDigest, true)

	var outputs []string
	cmd := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(t, w.env, "", connectord(), args...)
		outputs = append(outputs, out, errOut)
		if code != 0 {
			t.Fatalf("connectord %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	// configure-docker: the connector's registry goes to the helper.
	out := cmd("configure-docker", "--json")
	var rep struct {
		Changed bool   `json:"changed"`
		Backup  string `json:"backup"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Changed || rep.Backup == "" {
		t.Fatalf("configure-docker: %v %s", err, out)
	}
	pullable("after configure-docker", lab.Host, "team/app", labDigest, true)
	if out := cmd("configure-docker"); !strings.Contains(out, "no changes") {
		t.Errorf("configure-docker twice changed something:\n%s", out)
	}

	// import: bob's login moves; the stale one for the connector's
	// registry is skipped and left.
	out = cmd("import")
	if !strings.Contains(out, "moved "+priv.Host+" (user bob)") || !strings.Contains(out, "skipped "+lab.Host) {
		t.Errorf("import report:\n%s", out)
	}
	if out := cmd("import"); strings.Contains(out, "moved") || !strings.Contains(out, "no changes") {
		t.Errorf("import twice changed something:\n%s", out)
	}
	baks, _ := filepath.Glob(cfgPath + ".bak-*")
	if len(baks) != 2 {
		t.Errorf("backups %v, want one per run that changed the file (2)", baks)
	}

	var cfg struct {
		CredsStore  string                       `json:"credsStore"`
		CredHelpers map[string]string            `json:"credHelpers"`
		Auths       map[string]map[string]string `json:"auths"`
		PsFormat    string                       `json:"psFormat"`
		Experiment  string                       `json:"experimental"`
		X           json.RawMessage              `json:"x-tool-settings"`
		Proxies     json.RawMessage              `json:"proxies"`
	}
	data, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if strings.Contains(string(data), "bob-pw-9Xk") || strings.Contains(string(data), b64("bob", "bob-pw-9Xk")) {
		t.Error("bob's password is still in config.json")
	}
	if cfg.CredsStore != "connector" || cfg.CredHelpers[lab.Host] != "connector" || cfg.CredHelpers[priv.Host] != "connector" || cfg.CredHelpers["gcr.io"] != "gcloud" {
		t.Errorf("helpers: credsStore %q, credHelpers %v", cfg.CredsStore, cfg.CredHelpers)
	}
	if e, ok := cfg.Auths[priv.Host]; !ok || e["auth"] != "" || e["email"] != "bob@example.com" {
		t.Errorf("auths[%s] = %v, want kept with only its email", priv.Host, e)
	}
	if cfg.PsFormat != "table {{.ID}}\t{{.Image}}" || cfg.Experiment != "enabled" || !strings.Contains(string(cfg.X), "0.50") || !strings.Contains(string(cfg.Proxies), "<local>") {
		t.Errorf("other fields changed:\n%s", data)
	}
	if fi, _ := os.Stat(cfgPath); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}

	// After: both registries through the helper alone.
	pullable("after import", lab.Host, "team/app", labDigest, true)
	pullable("after import", priv.Host, "bob/app", privDigest, true)

	for _, o := range outputs {
		for _, s := range secrets {
			if strings.Contains(o, s) {
				t.Errorf("connectord printed the secret %q:\n%s", s, o)
			}
		}
	}
}
