package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/store"
)

const cfg = `
[[connector]]
name = "lab"
type = "docker"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "labuser"
password = "labpass-SECRET"

[[connector]]
name = "lab-team"
type = "docker"
resource_id = "127.0.0.1:5055/team"
[connector.config]
username = "teamuser"
password = "teampass-SECRET"

[[connector]]
name = "hub"
type = "docker"
resource_id = "docker.io"
[connector.config]
username = "hubuser"
password = "hubpass-SECRET"
`

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newDaemon(t *testing.T) (*daemon.Daemon, *syncBuffer) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state", "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("test.toml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.Build(registry.Default, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d := daemon.New(daemon.Options{Store: st, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	d.SetConnectors(list)
	return d, logs
}

func do(d *daemon.Daemon, req ipc.Request) *ipc.Response {
	return d.Handle(context.Background(), &req)
}

func TestGetResolution(t *testing.T) {
	t.Parallel()
	d, logs := newDaemon(t)
	if r := do(d, ipc.Request{Op: ipc.OpStore, ServerURL: "other.example:5000", Username: "stored", Secret: "storedpass-SECRET"}); r.Error != nil {
		t.Fatal(r.Error)
	}
	tests := []struct {
		name, url, user, code string
	}{
		{"host", "127.0.0.1:5055", "labuser", ""},
		{"host with scheme", "https://127.0.0.1:5055", "labuser", ""},
		{"repository under host", "127.0.0.1:5055/other/app", "labuser", ""},
		{"longest prefix wins", "127.0.0.1:5055/team/app", "teamuser", ""},
		{"prefix respects segments", "127.0.0.1:5055/teams/app", "labuser", ""},
		{"docker hub key", "https://index.docker.io/v1/", "hubuser", ""},
		{"docker hub alias", "registry-1.docker.io", "hubuser", ""},
		{"stored", "other.example:5000", "stored", ""},
		{"stored via repository path", "other.example:5000/x/y", "stored", ""},
		{"different port is another registry", "127.0.0.1:5056", "", string(ipc.CodeNotFound)},
		{"unknown", "nothing.example", "", string(ipc.CodeNotFound)},
		{"garbage", "ftp://x y", "", string(ipc.CodeInvalid)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := do(d, ipc.Request{Op: ipc.OpGet, ServerURL: tc.url})
			if tc.code != "" {
				if r.Error == nil || string(r.Error.Code) != tc.code {
					t.Fatalf("get %q = %+v, want code %s", tc.url, r, tc.code)
				}
				return
			}
			if r.Error != nil || r.Username != tc.user || !strings.HasSuffix(r.Secret, "-SECRET") {
				t.Fatalf("get %q = %+v, want user %s", tc.url, r, tc.user)
			}
		})
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), "SECRET") {
			t.Errorf("a secret reached the log:\n%s", logs)
		}
	})
}

func TestStoreEraseList(t *testing.T) {
	t.Parallel()
	d, logs := newDaemon(t)
	steps := []struct {
		name string
		req  ipc.Request
		code ipc.Code
		msg  string
	}{
		{"store", ipc.Request{Op: ipc.OpStore, ServerURL: "HTTPS://Reg.Example:5000/", Username: "alice", Secret: "alicepass-SECRET"}, "", ""},
		{"identity token", ipc.Request{Op: ipc.OpStore, ServerURL: "tok.example", Username: "<token>", Secret: "refresh-SECRET"}, "", ""},
		{"store over a config connector", ipc.Request{Op: ipc.OpStore, ServerURL: "127.0.0.1:5055", Username: "x", Secret: "y"}, ipc.CodeConflict, `served by connector "lab" from the config`},
		{"store over a config connector's path", ipc.Request{Op: ipc.OpStore, ServerURL: "http://127.0.0.1:5055", Username: "x", Secret: "y"}, ipc.CodeConflict, "served by connector"},
		{"empty username", ipc.Request{Op: ipc.OpStore, ServerURL: "reg.example", Secret: "y"}, ipc.CodeInvalid, "empty username"},
		{"erase a config connector", ipc.Request{Op: ipc.OpErase, ServerURL: "127.0.0.1:5055"}, ipc.CodeConflict, "remove it from the config"},
	}
	for _, s := range steps {
		r := do(d, s.req)
		if s.code == "" && r.Error != nil || s.code != "" && (r.Error == nil || r.Error.Code != s.code || !strings.Contains(r.Error.Message, s.msg)) {
			t.Fatalf("%s: got %+v, want code %q with %q", s.name, r.Error, s.code, s.msg)
		}
	}
	r := do(d, ipc.Request{Op: ipc.OpGet, ServerURL: "tok.example"})
	if r.Username != "<token>" || r.Secret != "refresh-SECRET" {
		t.Fatalf("identity token came back as %+v", r)
	}
	list := do(d, ipc.Request{Op: ipc.OpList}).Registries
	want := map[string]string{"reg.example:5000": "alice", "tok.example": "<token>", "127.0.0.1:5055": "labuser", "127.0.0.1:5055/team": "teamuser", "https://index.docker.io/v1/": "hubuser"}
	if len(list) != len(want) {
		t.Fatalf("list = %v, want %v", list, want)
	}
	for k, v := range want {
		if list[k] != v {
			t.Errorf("list[%q] = %q, want %q", k, list[k], v)
		}
	}
	// docker logout erases host, host, http://host and https://host.
	for _, u := range []string{"reg.example:5000", "reg.example:5000", "http://reg.example:5000", "https://reg.example:5000"} {
		if r := do(d, ipc.Request{Op: ipc.OpErase, ServerURL: u}); r.Error != nil {
			t.Fatalf("erase %q: %v", u, r.Error)
		}
	}
	if r := do(d, ipc.Request{Op: ipc.OpGet, ServerURL: "reg.example:5000"}); r.Error == nil || r.Error.Code != ipc.CodeNotFound {
		t.Fatalf("after erase: %+v", r)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
}

// A connector that exists but fails is an error naming it, never a
// not-found that would send docker to anonymous access.
type failing struct{}

func (failing) Configure(*connectors.Instance) error { return nil }
func (failing) Credentials(context.Context, resourceid.ID) (connectors.Credentials, error) {
	return connectors.Credentials{}, errors.New("token service unreachable")
}

func TestFailingConnectorIsNotNotFound(t *testing.T) {
	t.Parallel()
	reg := registry.New()
	spec := connectors.TypeSpec{Type: "flaky",
		AuthMethods:   []connectors.AuthMethodSpec{{ID: "x"}},
		ResourceTypes: []connectors.ResourceTypeSpec{{ID: connectors.ResourceTypeDockerRegistry, AuthMethods: []string{"x"}, SupportsInstances: true}}}
	reg.MustRegister(registry.Type{Spec: spec, New: func() connectors.Connector { return failing{} }})
	inst, err := reg.Instantiate(connectors.Entry{Name: "flaky-one", Type: "flaky", ResourceID: "f.example"}, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := store.Open(filepath.Join(t.TempDir(), "c.json"))
	d := daemon.New(daemon.Options{Store: st})
	d.SetConnectors([]*connectors.Instance{inst})
	r := do(d, ipc.Request{Op: ipc.OpGet, ServerURL: "f.example"})
	if r.Error == nil || r.Error.Code != ipc.CodeUnavailable || !strings.Contains(r.Error.Message, `connector "flaky-one": token service unreachable`) {
		t.Fatalf("got %+v", r.Error)
	}
}

func TestConnectorsAndStatusHideSecrets(t *testing.T) {
	t.Parallel()
	d, _ := newDaemon(t)
	do(d, ipc.Request{Op: ipc.OpStore, ServerURL: "reg.example", Username: "alice", Secret: "alicepass-SECRET"})
	for _, op := range []ipc.Op{ipc.OpConnectors, ipc.OpStatus} {
		r := do(d, ipc.Request{Op: op})
		if r.Error != nil || strings.Contains(string(r.Data), "SECRET") {
			t.Fatalf("%s: %s %v", op, r.Data, r.Error)
		}
	}
	var infos []connectors.Info
	if err := json.Unmarshal(do(d, ipc.Request{Op: ipc.OpConnectors}).Data, &infos); err != nil {
		t.Fatal(err)
	}
	origins := map[string]string{}
	for _, i := range infos {
		origins[i.Name] = i.Origin
	}
	if origins["lab"] != "config" || origins["reg.example"] != "store" || len(infos) != 4 {
		t.Fatalf("infos: %+v", infos)
	}
}
