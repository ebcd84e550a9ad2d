package dockercfg

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/resourceid"
)

// richConfig has the fields real config files carry besides credentials,
// in the shapes that are easy to damage: numbers whose text must not
// change, HTML-ish strings, nested objects, and an unknown field.
const richConfig = `{
	"auths": {
		"127.0.0.1:5000": {"auth": "` + "Ym9iOnB3LVNFQ1JFVA==" + `", "email": "bob@example.com"},
		"https://index.docker.io/v1/": {}
	},
	"credHelpers": {"gcr.io": "gcloud"},
	"psFormat": "table {{.ID}}\t{{.Names}}",
	"detachKeys": "ctrl-e,e",
	"proxies": {"default": {"httpProxy": "http://proxy:3128", "noProxy": "localhost,<local>&co"}},
	"plugins": {"buildx": {"enabled": "true"}},
	"currentContext": "desktop-linux",
	"x-custom": [1, 2.50, 1e3, {"nested": null}, true]
}
`

// keptFields are richConfig's fields that no edit may touch.
var keptFields = []string{"psFormat", "detachKeys", "proxies", "plugins", "currentContext", "x-custom"}

func writeFile(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func decode(t *testing.T, data []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("written file is not JSON: %v\n%s", err, data)
	}
	return m
}

// compact normalises a raw value for comparison; Compact keeps number
// text and string escapes as they are.
func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var now = time.Date(2026, 12, 4, 15, 4, 5, 0, time.UTC)

func TestEditKeepsEverythingElse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode os.FileMode
		edit func(f *File)
	}{
		{"credsStore", 0o600, func(f *File) { f.SetCredsStore("connector") }},
		{"credHelpers", 0o640, func(f *File) { f.SetCredHelper("127.0.0.1:5000", "connector") }},
		{"take a credential", 0o644, func(f *File) { f.TakeCredential("127.0.0.1:5000") }},
		{"all three", 0o600, func(f *File) {
			f.SetCredsStore("connector")
			f.SetCredHelper("docker.io", "connector")
			f.TakeCredential("127.0.0.1:5000")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeFile(t, dir, richConfig, tt.mode)
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(f)
			if !f.Changed() {
				t.Fatal("Changed() is false after an edit")
			}
			backup, err := f.Save(now)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			before, after := decode(t, []byte(richConfig)), decode(t, got)
			for _, k := range keptFields {
				if compact(t, before[k]) != compact(t, after[k]) {
					t.Errorf("%s changed:\nbefore %s\nafter  %s", k, before[k], after[k])
				}
			}
			var helpers map[string]string
			_ = json.Unmarshal(after["credHelpers"], &helpers)
			if helpers["gcr.io"] != "gcloud" {
				t.Errorf("another registry's credHelpers entry was lost: %v", helpers)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != tt.mode {
				t.Errorf("mode %v after the edit, want %v kept", fi.Mode().Perm(), tt.mode)
			}
			if want := path + ".bak-20261204T150405Z"; backup != want {
				t.Errorf("backup %q, want %q", backup, want)
			}
			if b, err := os.ReadFile(backup); err != nil || string(b) != richConfig {
				t.Errorf("backup does not hold the old bytes: %v\n%s", err, b)
			}
			if fi, _ := os.Stat(backup); fi.Mode().Perm() != tt.mode {
				t.Errorf("backup mode %v, want %v (it may hold the same secrets)", fi.Mode().Perm(), tt.mode)
			}
			if !bytes.Contains(got, []byte("\n\t\"")) {
				t.Errorf("not tab-indented as docker writes it:\n%s", got)
			}
		})
	}
}

func TestIdempotent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, richConfig, 0o600)
	edit := func() (changed bool, backup string) {
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		f.SetCredsStore("connector")
		f.SetCredHelper("127.0.0.1:5000", "connector")
		f.TakeCredential("127.0.0.1:5000")
		f.TakeCredential("https://index.docker.io/v1/") // already {}
		changed = f.Changed()
		backup, err = f.Save(now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return changed, backup
	}
	if changed, backup := edit(); !changed || backup == "" {
		t.Fatalf("first run: changed %v, backup %q; want a change and a backup", changed, backup)
	}
	first, _ := os.ReadFile(path)
	fi1, _ := os.Stat(path)
	if changed, backup := edit(); changed || backup != "" {
		t.Errorf("second run: changed %v, backup %q; want nothing", changed, backup)
	}
	second, _ := os.ReadFile(path)
	fi2, _ := os.Stat(path)
	if !bytes.Equal(first, second) || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("second run rewrote the file")
	}
	baks, _ := filepath.Glob(path + ".bak-*")
	if len(baks) != 1 {
		t.Errorf("backups %v, want exactly one", baks)
	}
}

func TestMalformedLeavesFileAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, wantMsg string
	}{
		{"truncated", `{"auths": {"h": {"auth": "c2VjcmV0OnNlY3JldA=="}`, "invalid JSON"},
		{"syntax error on line 3", "{\n  \"auths\": {},\n  \"psFormat\": 'x'\n}", "line 3"},
		{"array", `[1, 2]`, "a JSON array, not an object"},
		{"string", `"hello"`, "a JSON string, not an object"},
		{"credHelpers array", `{"credHelpers": ["a"]}`, "credHelpers"},
		{"credHelpers number value", `{"credHelpers": {"a": 1}}`, "credHelpers"},
		{"auths string value", `{"auths": {"h": "c2VjcmV0"}}`, "auths"},
		{"credsStore object", `{"credsStore": {}}`, "credsStore"},
		{"trailing garbage", `{} {}`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := writeFile(t, dir, tt.content, 0o600)
			_, err := Load(path)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Load: %v, want ErrMalformed", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantMsg) || !strings.Contains(msg, path) {
				t.Errorf("error %q does not say %q and name the file", msg, tt.wantMsg)
			}
			for _, secret := range []string{"c2VjcmV0", "secret"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q quotes the file's content", msg)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Error("file changed")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("files left next to it: %v", entries)
			}
		})
	}
}

func TestNewFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "home", ".docker")
	path := filepath.Join(dir, "config.json")
	f, err := Load(path)
	if err != nil || f.Exists {
		t.Fatalf("Load of a missing file: %v, exists %v", err, f.Exists)
	}
	f.SetCredsStore("connector")
	backup, err := f.Save(now)
	if err != nil || backup != "" {
		t.Fatalf("Save: backup %q, %v; want no backup of nothing", backup, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("new dir mode %v, want 0700", di.Mode().Perm())
	}
	if got, _ := os.ReadFile(path); compact(t, got) != `{"credsStore":"connector"}` {
		t.Errorf("new file %s", got)
	}
}

func TestEmptyAndNullFiles(t *testing.T) {
	t.Parallel()
	for _, content := range []string{"", "  \n", "null"} {
		path := writeFile(t, t.TempDir(), content, 0o600)
		f, err := Load(path)
		if err != nil {
			t.Errorf("Load(%q): %v", content, err)
			continue
		}
		f.SetCredsStore("connector")
		if _, err := f.Save(now); err != nil {
			t.Errorf("Save after Load(%q): %v", content, err)
		}
	}
}

func TestSymlinkFollowed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "docker-config.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte(richConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	f, err := Load(link)
	if err != nil {
		t.Fatal(err)
	}
	f.SetCredsStore("connector")
	backup, err := f.Save(now)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the symlink was replaced: %v %v", err, fi.Mode())
	}
	if b, _ := os.ReadFile(real); !bytes.Contains(b, []byte(`"credsStore": "connector"`)) {
		t.Errorf("the link's target was not edited:\n%s", b)
	}
	if filepath.Dir(backup) != filepath.Dir(real) {
		t.Errorf("backup %s not next to the real file", backup)
	}
}

func TestBackupNamesNeverCollide(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), `{}`, 0o600)
	var backups []string
	for i := range 3 {
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		f.SetCredHelper("r"+string(rune('a'+i)), "connector")
		b, err := f.Save(now) // the same second every time
		if err != nil {
			t.Fatal(err)
		}
		backups = append(backups, b)
	}
	slices.Sort(backups)
	if len(slices.Compact(slices.Clone(backups))) != 3 {
		t.Errorf("backups %v collide", backups)
	}
}

func TestSetters(t *testing.T) {
	t.Parallel()
	f, err := Load(writeFile(t, t.TempDir(), `{"credsStore": "desktop", "credHelpers": {"a": "connector", "b": "ecr-login"}}`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if old, ch := f.SetCredsStore("connector"); old != "desktop" || !ch {
		t.Errorf("SetCredsStore: %q %v", old, ch)
	}
	if old, ch := f.SetCredsStore("connector"); old != "connector" || ch {
		t.Errorf("SetCredsStore again: %q %v", old, ch)
	}
	if old, ch := f.SetCredHelper("a", "connector"); old != "connector" || ch {
		t.Errorf("SetCredHelper unchanged: %q %v", old, ch)
	}
	if old, ch := f.SetCredHelper("b", "connector"); old != "ecr-login" || !ch {
		t.Errorf("SetCredHelper replace: %q %v", old, ch)
	}
	if got := f.CredHelpers(); got["a"] != "connector" || got["b"] != "connector" || len(got) != 2 {
		t.Errorf("CredHelpers() = %v", got)
	}
	if f.TakeCredential("nope") {
		t.Error("TakeCredential of a missing key reported a removal")
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestPlaintext(t *testing.T) {
	t.Parallel()
	auths := map[string]any{
		"auth.example":     map[string]any{"auth": b64("alice:pa:ss"), "email": "a@x"},
		"nul.example":      map[string]any{"auth": b64("carol:pw\x00\x00")},
		"fields.example":   map[string]any{"username": "dave", "password": "dpw"},
		"token.example":    map[string]any{"identitytoken": "tok", "auth": b64("erin:epw")},
		"empty.example":    map[string]any{},
		"email.example":    map[string]any{"email": "only@x"},
		"badb64.example":   map[string]any{"auth": "!!!"},
		"nocolon.example":  map[string]any{"auth": b64("justauser")},
		"halfuser.example": map[string]any{"username": "frank"},
		"regtok.example":   map[string]any{"registrytoken": "rt"},
	}
	raw, _ := json.Marshal(map[string]any{"auths": auths})
	f, err := Load(writeFile(t, t.TempDir(), string(raw), 0o600))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Plaintext{}
	for _, p := range f.Plaintext() {
		got[p.Key] = p
	}
	wantCred := map[string][2]string{
		"auth.example":   {"alice", "pa:ss"},
		"nul.example":    {"carol", "pw"},
		"fields.example": {"dave", "dpw"},
		"token.example":  {TokenUsername, "tok"},
	}
	for k, want := range wantCred {
		if p := got[k]; p.Err != nil || p.Cred.Key != k || p.Cred.Username != want[0] || p.Cred.Secret.Reveal() != want[1] {
			t.Errorf("%s: %+v, want user %s and its password", k, p, want[0])
		}
	}
	for _, k := range []string{"badb64.example", "nocolon.example", "halfuser.example", "regtok.example"} {
		p, ok := got[k]
		if !ok || !errors.Is(p.Err, ErrUnusable) {
			t.Errorf("%s: %+v, want ErrUnusable", k, p)
		}
		if ok && (strings.Contains(p.Err.Error(), "justauser") || strings.Contains(p.Err.Error(), "rt\"")) {
			t.Errorf("%s: error quotes the credential: %v", k, p.Err)
		}
	}
	for _, k := range []string{"empty.example", "email.example"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s holds no credential but is listed", k)
		}
	}

	// Taking keeps metadata and the entry itself.
	f.TakeCredential("auth.example")
	f.TakeCredential("token.example")
	data, _ := f.Marshal()
	var out struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if e, ok := out.Auths["auth.example"]; !ok || len(e) != 1 || e["email"] != "a@x" {
		t.Errorf("auth.example after take: %v, want only its email", e)
	}
	if e, ok := out.Auths["token.example"]; !ok || len(e) != 0 {
		t.Errorf("token.example after take: %v, want {}", e)
	}
}

func TestHelperKeys(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"127.0.0.1:5000":              {"127.0.0.1:5000"},
		"registry.example.com/team/x": {"registry.example.com"},
		"docker.io":                   {"https://index.docker.io/v1/", "docker.io"},
		"https://index.docker.io/v1/": {"https://index.docker.io/v1/", "docker.io"},
		"index.docker.io/library/x":   {"https://index.docker.io/v1/", "docker.io"},
	}
	for in, want := range tests {
		if got := HelperKeys(resourceid.MustParse(in)); !slices.Equal(got, want) {
			t.Errorf("HelperKeys(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestPath(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if p, _ := Path(env(map[string]string{"DOCKER_CONFIG": "/d", "HOME": "/h"})); p != "/d/config.json" {
		t.Errorf("with DOCKER_CONFIG: %s", p)
	}
	if p, _ := Path(env(map[string]string{"HOME": "/h"})); p != "/h/.docker/config.json" {
		t.Errorf("with HOME: %s", p)
	}
}
