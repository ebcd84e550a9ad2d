package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/secret"
	"github.com/connectord/connectord/store"
)

const (
	verifyPass = "verify-pass-S3CRET"
	verifyBad  = "verify-wrong-S3CRET"
)

func verifyArgs(t *testing.T, rid string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(daemon.VerifyArgs{ResourceID: rid})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": verifyPass}
	lab := testenv.StartRegistry(t, testenv.RegistryOptions{Users: users})
	lab.SeedImage(t, "alice/app", "v1", "alice", verifyPass)
	lab.SeedImage(t, "team/tool", "v1", "alice", verifyPass)
	tok := testenv.StartTokenRegistry(t, users)
	tok.SeedImage(t, "alice/app", "v1", "alice", verifyPass)

	// An exec connector: its type cannot verify, so the daemon verifies
	// the credential it fetches.
	script := filepath.Join(t.TempDir(), "cred.sh")
	if err := os.WriteFile(script, fmt.Appendf(nil, "#!/bin/sh\ncat >/dev/null\nprintf '{\"Username\":\"alice\",\"Secret\":\"%s\"}\\n'\n", verifyPass), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
[[connector]]
name = "good"
type = "docker"
resource_id = %[1]q
[connector.config]
username = "alice"
password = %[2]q

[[connector]]
name = "bad"
type = "docker"
resource_id = "%[1]s/alice"
[connector.config]
username = "alice"
password = %[3]q

[[connector]]
name = "fetched"
type = "exec"
auth_method = "command"
resource_id = "%[1]s/team"
[connector.config]
command = [%[4]q]
`, lab.Host, verifyPass, verifyBad, script)
	f, err := config.Parse("test.toml", []byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.Build(registry.Default, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state", "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	d := daemon.New(daemon.Options{Store: st, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(d.Close)
	d.SetConnectors(list)

	// A stored identity token for the token registry, as login leaves it.
	lr, err := regauth.Login(t.Context(), tok.Host, "alice", secret.New(verifyPass), regauth.Options{})
	if err != nil || !lr.Credentials.IsIdentityToken() {
		t.Fatalf("Login = %+v, %v", lr, err)
	}
	if r := do(d, ipc.Request{Op: ipc.OpStore, ServerURL: tok.Host, Username: lr.Credentials.Username, Secret: lr.Credentials.Secret.Reveal()}); r.Error != nil {
		t.Fatal(r.Error)
	}

	for _, tc := range []struct {
		name, conn, rid string
		code            ipc.Code
		msg             string
		repos           []string
		auth            string
	}{
		{"connector", "good", "", "", "", []string{"alice/app", "team/tool"}, "basic"},
		{"narrowed", "good", lab.Host + "/team", "", "", []string{"team/tool"}, "basic"},
		{"not served", "good", "other.example", ipc.CodeInvalid, `connector "good" does not serve other.example`, nil, ""},
		{"wrong password", "bad", "", ipc.CodeForbidden, `connector "bad": authentication failed at ` + lab.Host + `: wrong username or password (registry said: UNAUTHORIZED`, nil, ""},
		{"fetched credential", "fetched", "", "", "", []string{"team/tool"}, "basic"},
		{"stored identity token", tok.Host, "", "", "", []string{"alice/app"}, "bearer"},
		{"stored, narrowed", "http://" + tok.Host, tok.Host + "/bob", "", "", nil, "bearer"},
		{"stored, elsewhere", tok.Host, lab.Host, ipc.CodeInvalid, "is not on " + tok.Host, nil, ""},
		{"unknown", "nope", "", ipc.CodeNotFound, `no connector or stored credential named "nope"`, nil, ""},
		{"no name", "", "", ipc.CodeInvalid, "name a connector", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := d.Handle(context.Background(), &ipc.Request{Op: ipc.OpVerify, Name: tc.conn, Args: verifyArgs(t, tc.rid)})
			if tc.code != "" {
				if r.Error == nil || r.Error.Code != tc.code || !strings.Contains(r.Error.Message, tc.msg) {
					t.Fatalf("verify %s: %+v, want %s with %q", tc.conn, r.Error, tc.code, tc.msg)
				}
				if strings.Contains(r.Error.Message, "S3CRET") {
					t.Errorf("error holds a secret: %s", r.Error.Message)
				}
				return
			}
			if r.Error != nil {
				t.Fatalf("verify %s: %v", tc.conn, r.Error)
			}
			var res connectors.Resources
			if err := json.Unmarshal(r.Data, &res); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Repositories, tc.repos) || res.Auth != tc.auth || res.ResourceType != connectors.ResourceTypeDockerRegistry || !strings.HasPrefix(res.Endpoint, "http://") {
				t.Errorf("verify %s = %+v, want repositories %v auth %s", tc.conn, res, tc.repos, tc.auth)
			}
		})
	}
	t.Cleanup(func() {
		if l := logs.String(); strings.Contains(l, "S3CRET") || strings.Contains(l, lr.Credentials.Secret.Reveal()) {
			t.Errorf("a secret reached the log:\n%s", l)
		}
		if l := logs.String(); !strings.Contains(l, "verify failed") || !strings.Contains(l, "connector=bad") {
			t.Errorf("the failed verification is not logged:\n%s", l)
		}
	})
}
