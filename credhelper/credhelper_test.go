package credhelper_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all"
	"github.com/connectord/connectord/credhelper"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc/server"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/store"
)

var helperBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "credhelper-bin")
	if err != nil {
		panic(err)
	}
	helperBin = filepath.Join(dir, "docker-credential-connector")
	out, err := exec.Command("go", "build", "-o", helperBin, "../cmd/docker-credential-connector").CombinedOutput()
	if err != nil {
		panic("building the helper: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startDaemon serves a real daemon in-process on a socket in a short temp
// dir and returns that socket.
func startDaemon(t testing.TB, cfg string) string {
	t.Helper()
	st, err := store.Open(filepath.Join(testenv.ShortTempDir(t), "state", "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	return startDaemonWith(t, cfg, st)
}

func startDaemonWith(t testing.TB, cfg string, st daemon.Store) string {
	t.Helper()
	dir := testenv.ShortTempDir(t)
	d := daemon.New(daemon.Options{Store: st})
	if cfg != "" {
		f, err := config.Parse("test.toml", []byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		list, err := f.Build(registry.Default, connectors.OSResolver{})
		if err != nil {
			t.Fatal(err)
		}
		d.SetConnectors(list)
	}
	sock := filepath.Join(dir, "run", "connectord.sock")
	ln, err := server.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.New(d, server.Options{}).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return sock
}

// program runs the real helper binary the way docker does, through
// docker-credential-helpers' own client package.
func program(sock string, extra ...string) client.ProgramFunc {
	env := map[string]string{"CONNECTORD_SOCKET": sock, "CONNECTORD_NO_AUTOSTART": "1"}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	return client.NewShellProgramFuncWithEnv(helperBin, &env)
}

const cfg = `
[[connector]]
name = "lab"
type = "docker"
resource_id = "127.0.0.1:5055"
[connector.config]
username = "labuser"
password = "labpass"
`

func TestProtocolConformance(t *testing.T) {
	t.Parallel()
	sock := startDaemon(t, cfg)
	p := program(sock)

	got, err := client.Get(p, "127.0.0.1:5055")
	if err != nil || got.Username != "labuser" || got.Secret != "labpass" || got.ServerURL != "127.0.0.1:5055" {
		t.Fatalf("get config connector = %+v, %v", got, err)
	}
	// Unknown registry: docker's client must recognise the answer as
	// not-found so docker falls back to anonymous access.
	_, err = client.Get(p, "unknown.example")
	if !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("get unknown = %v, want docker's not-found", err)
	}
	for _, c := range []*credentials.Credentials{
		{ServerURL: "reg.example:5000", Username: "alice", Secret: "alicepass"},
		{ServerURL: "https://index.docker.io/v1/", Username: "<token>", Secret: "identity-token"},
	} {
		if err := client.Store(p, c); err != nil {
			t.Fatalf("store %s: %v", c.ServerURL, err)
		}
	}
	if got, err := client.Get(p, "https://index.docker.io/v1/"); err != nil || got.Username != "<token>" || got.Secret != "identity-token" {
		t.Fatalf("identity token = %+v, %v", got, err)
	}
	list, err := client.List(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"127.0.0.1:5055": "labuser", "reg.example:5000": "alice", "https://index.docker.io/v1/": "<token>"}
	if len(list) != len(want) {
		t.Fatalf("list = %v", list)
	}
	for k, v := range want {
		if list[k] != v {
			t.Errorf("list[%s] = %q, want %q", k, list[k], v)
		}
	}
	// docker logout erases host, host, http://host, https://host.
	for _, u := range []string{"reg.example:5000", "reg.example:5000", "http://reg.example:5000", "https://reg.example:5000"} {
		if err := client.Erase(p, u); err != nil {
			t.Fatalf("erase %s: %v", u, err)
		}
	}
	if _, err := client.Get(p, "reg.example:5000"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("after erase: %v", err)
	}
	err = client.Store(p, &credentials.Credentials{ServerURL: "127.0.0.1:5055", Username: "x", Secret: "y"})
	if err == nil || !strings.Contains(err.Error(), `served by connector "lab"`) {
		t.Fatalf("store over a config connector = %v", err)
	}
	if err := client.Erase(p, "127.0.0.1:5055"); err == nil || !strings.Contains(err.Error(), `served by connector "lab"`) {
		t.Fatalf("erase of a config connector = %v", err)
	}
}

// The exact bytes docker and the other clients parse.
func TestWireOutputExact(t *testing.T) {
	t.Parallel()
	sock := startDaemon(t, cfg)
	env := append(os.Environ(), "CONNECTORD_SOCKET="+sock, "CONNECTORD_NO_AUTOSTART=1")
	tests := []struct {
		name, verb, stdin, stdout string
		code                      int
	}{
		{"get", "get", "127.0.0.1:5055\n", `{"ServerURL":"127.0.0.1:5055","Username":"labuser","Secret":"labpass"}` + "\n", 0},
		{"get not found", "get", "nothing.example\n", credhelper.NotFoundMessage + "\n", 1},
		{"get empty stdin", "get", "", "no credentials server URL\n", 1},
		{"store malformed json", "store", "{not json", "", 1},
		{"store no server", "store", `{"Username":"u","Secret":"s"}`, "no credentials server URL\n", 1},
		{"store no username", "store", `{"ServerURL":"h.example","Secret":"s"}`, "no credentials username\n", 1},
		{"erase missing", "erase", "never.example\n", "", 0},
		{"unknown verb", "frobnicate", "", "docker-credential-connector: unknown action: frobnicate\n", 1},
		{"version", "version", "", "docker-credential-connector (github.com/connectord/connectord) dev\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := testenv.Run(t, env, tc.stdin, helperBin, tc.verb)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stdout %q stderr %q)", code, tc.code, stdout, stderr)
			}
			if tc.name == "store malformed json" {
				if stdout == "" || code != 1 {
					t.Errorf("malformed JSON: no error on stdout")
				}
				return
			}
			if stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", stdout, tc.stdout)
			}
		})
	}
	if credhelper.NotFoundMessage != credentials.NewErrCredentialsNotFound().Error() {
		t.Fatal("NotFoundMessage drifted from docker-credential-helpers'")
	}
}

// With no daemon and autostart off, the helper fails loudly, naming the
// socket and how to start the service: never a not-found that would turn
// into a confusing anonymous pull.
func TestNoDaemon(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(testenv.ShortTempDir(t), "none.sock")
	_, err := client.Get(program(sock), "127.0.0.1:5055")
	if err == nil || credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("get with no daemon = %v", err)
	}
	for _, w := range []string{sock, "connectord start"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}
