package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all"
	"github.com/connectord/connectord/registry"
)

func build(t *testing.T, text string) ([]*connectors.Instance, error) {
	t.Helper()
	f, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		return nil, err
	}
	return f.Build(registry.Default, connectors.OSResolver{})
}

const good = `
version = 1
[daemon]
log_level = "debug"
[[connector]]
name = "lab"
type = "docker"
auth_method = "password"
resource_type = "docker-registry"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "labuser"
password = "labpass"

[[connector]]
name = "hub"
type = "docker"
resource_id = "https://index.docker.io/v1/"
[connector.config]
username = "me"
password = { env = "CONNECTORD_TEST_HUB_TOKEN" }
`

func TestGoodConfig(t *testing.T) {
	t.Setenv("CONNECTORD_TEST_HUB_TOKEN", "tok-from-env")
	list, err := build(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("got %d connectors", len(list))
	}
	hub := list[1]
	if hub.ResourceID != "docker.io" || hub.RID.Key() != "https://index.docker.io/v1/" || hub.AuthMethod != "password" {
		t.Errorf("hub connector: %+v", hub.Info())
	}
	if got := hub.Config.Secret("password").Reveal(); got != "tok-from-env" {
		t.Errorf("env secret = %q", got)
	}
}

// Every problem is listed at once, each with its line, connector and field,
// and nothing secret is echoed back.
func TestBadConfigListsEveryProblem(t *testing.T) {
	t.Parallel()
	text := `version = 1
colour = "blue"
[daemon]
log_level = "loud"
sockett = "/x"
[[connector]]
name = "lab"
type = "docker"
resource_id = "127.0.0.1:5055"
extra = true
[connector.config]
username = "labuser"
pasword = "hunter2-typo"

[[connector]]
name = "lab"
type = "dockr"

[[connector]]
type = "docker"
resource_id = 5055
`
	_, err := build(t, text)
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v, want *config.Error", err)
	}
	msg := err.Error()
	want := []string{
		"invalid config test.toml:",
		`line 2: colour: unknown key`,
		`line 4: daemon.log_level: "loud" is not one of debug, info, warn, error`,
		`line 5: daemon.sockett: unknown key`,
		`line 10: connector "lab": extra: unknown key`,
		`line 21: connector "#3": resource_id: must be a string`,
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error echoes a secret:\n%s", msg)
	}

	// Structural problems stop before schema checks; a structurally sound
	// file gets every schema problem listed.
	text2 := `[[connector]]
name = "ok"
type = "docker"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "u"
password = "p"

[[connector]]
name = "lab"
type = "docker"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "labuser"
pasword = "hunter2-typo"

[[connector]]
name = "lab"
type = "dockr"

[[connector]]
name = "other"
type = "docker"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "u"
password = "p"
`
	_, err = build(t, text2)
	msg = err.Error()
	for _, w := range []string{
		`line 15: connector "lab": config.pasword: unknown field for auth method "password" (known: username, password, insecure)`,
		`line 9: connector "lab": config.password: required field is missing`,
		`line 18: connector "lab": name: duplicate name`,
		`line 19: connector "lab": type: unknown connector type "dockr" (known types: [docker exec])`,
		`line 24: connector "other": resource_id: connector "ok" already serves 127.0.0.1:5055`,
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("missing %q in:\n%s", w, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error echoes a secret:\n%s", msg)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, text, want string }{
		{"syntax", "[[connector]\nname=", "line 2:"},
		{"version", "version = 2", "unsupported version 2"},
		{"version type", `version = "1"`, "version: must be an integer"},
		{"daemon not table", `daemon = 1`, "daemon: must be a table"},
		{"connector not array", "[connector]\nname='x'", "connector: must be an array of tables"},
		{"expires_at", "[[connector]]\nname='a'\ntype='docker'\nexpires_at='tomorrow'", "expires_at: must be an RFC 3339 date-time"},
		{"expiration on non-expiring", "[[connector]]\nname='a'\ntype='docker'\nresource_id='h'\nexpiration_seconds=60\n[connector.config]\nusername='u'\npassword='p'", `expiration_seconds: auth method "password" issues credentials that do not expire`},
		{"secret of wrong type", "[[connector]]\nname='a'\ntype='docker'\nresource_id='h'\n[connector.config]\nusername='u'\npassword=12345", "config.password: must be a string, got an integer"},
		{"missing file secret", "[[connector]]\nname='a'\ntype='docker'\nresource_id='h'\n[connector.config]\nusername='u'\npassword={file='/nonexistent/pw'}", "reading /nonexistent/pw: no such file or directory"},
		{"empty password", "[[connector]]\nname='a'\ntype='docker'\nresource_id='h'\n[connector.config]\nusername='u'\npassword=''", "config.password: must not be empty"},
		{"bad resource id", "[[connector]]\nname='a'\ntype='docker'\nresource_id='ftp://h'\n[connector.config]\nusername='u'\npassword='p'", "resource_id:"},
		{"wrong resource type", "[[connector]]\nname='a'\ntype='docker'\nresource_type='s3-bucket'\nresource_id='h'\n[connector.config]\nusername='u'\npassword='p'", `does not serve resource type "s3-bucket"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := build(t, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, config.ErrNoConfig) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v", err)
	}
}

// The shipped example and default configs must stay valid.
func TestShippedConfigsAreValid(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"../config.example.toml", "../contrib/config.default.toml"} {
		f, err := config.Load(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if _, err := f.Build(registry.Default, connectors.OSResolver{}); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
}

func TestDefaultPaths(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name              string
		env               map[string]string
		wantCfg, wantStor string
	}{
		{"xdg", map[string]string{"XDG_CONFIG_HOME": "/x/cfg", "XDG_STATE_HOME": "/x/state", "HOME": "/h"}, "/x/cfg/connectord/config.toml", "/x/state/connectord/credentials.json"},
		{"home", map[string]string{"HOME": "/h"}, "/h/.config/connectord/config.toml", "/h/.local/state/connectord/credentials.json"},
		{"relative xdg ignored", map[string]string{"XDG_CONFIG_HOME": "rel", "HOME": "/h"}, "/h/.config/connectord/config.toml", "/h/.local/state/connectord/credentials.json"},
		{"explicit", map[string]string{"CONNECTORD_CONFIG": "/etc/c.toml", "HOME": "/h"}, "/etc/c.toml", "/h/.local/state/connectord/credentials.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := config.DefaultPath(env(tc.env)); got != tc.wantCfg {
				t.Errorf("DefaultPath = %q, want %q", got, tc.wantCfg)
			}
			if got := config.DefaultStorePath(env(tc.env)); got != tc.wantStor {
				t.Errorf("DefaultStorePath = %q, want %q", got, tc.wantStor)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[[connector]]\nname='a'\ntype='docker'\n[connector.config]\npassword={env='X'}"))
	f.Add([]byte("version = 1\n[daemon]\nsocket='/s'"))
	b, err := os.ReadFile("../config.example.toml")
	if err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := config.Parse("fuzz.toml", data)
		if err != nil {
			var cerr *config.Error
			if !errors.As(err, &cerr) || len(cerr.Problems) == 0 {
				t.Fatalf("Parse error is not a *config.Error with problems: %v", err)
			}
			return
		}
		// Resolve nothing from the real machine while fuzzing.
		_, _ = file.Build(registry.Default, nilResolver{})
	})
}

type nilResolver struct{}

func (nilResolver) LookupEnv(string) (string, bool) { return "", false }
func (nilResolver) ReadFile(string) ([]byte, error) { return nil, fs.ErrNotExist }

// The TOML parser quotes the text it choked on; on a password line that
// is the password.
func TestSyntaxErrorsNeverQuoteTheFile(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"[[connector]]\nname = \"a\"\n[connector.config]\npassword = mysecretword\n",
		"[[connector]]\nname = \"a\"\n[connector.config]\npassword = \"abc-mysecretword\\u12\"\n",
		"[[connector]]\nname = \"a\"\n[connector.config]\npassword = 'mysecretword\n",
	} {
		_, err := config.Parse("t.toml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "line 4") {
			t.Fatalf("want a line-4 syntax error, got %v", err)
		}
		if strings.Contains(err.Error(), "mysecretword") {
			t.Errorf("syntax error quotes the password: %v", err)
		}
	}
}

func TestGetWait(t *testing.T) {
	t.Parallel()
	f, err := config.Parse("t.toml", []byte("[daemon]\nget_wait = \"3s\"\n"))
	if err != nil || f.Daemon.GetWait.String() != "3s" {
		t.Fatalf("get_wait 3s: %v %v", f, err)
	}
	for _, bad := range []string{`"0s"`, `"1m"`, `"soon"`} {
		if _, err := config.Parse("t.toml", []byte("[daemon]\nget_wait = "+bad+"\n")); err == nil || !strings.Contains(err.Error(), "daemon.get_wait") {
			t.Errorf("get_wait = %s accepted: %v", bad, err)
		}
	}
}

// anyResolver resolves every { env } and { file } reference to a dummy
// value: the README's snippets name variables this machine lacks.
type anyResolver struct{}

func (anyResolver) LookupEnv(string) (string, bool) { return "x", true }
func (anyResolver) ReadFile(string) ([]byte, error) { return []byte("x"), nil }

// Every TOML snippet in the README must be a valid config: a new user
// copies them.
func TestReadmeSnippetsAreValid(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "```toml\n")
	if len(parts) < 3 {
		t.Fatalf("expected TOML snippets in the README, found %d", len(parts)-1)
	}
	for i, p := range parts[1:] {
		snippet := p[:strings.Index(p, "```")]
		// Snippets are indented inside list items.
		var lines []string
		for _, l := range strings.Split(snippet, "\n") {
			lines = append(lines, strings.TrimPrefix(l, "   "))
		}
		f, err := config.Parse("README snippet", []byte(strings.Join(lines, "\n")))
		if err == nil {
			_, err = f.Build(registry.Default, anyResolver{})
		}
		if err != nil {
			t.Errorf("README TOML snippet %d is not a valid config: %v\n%s", i+1, err, snippet)
		}
	}
}
