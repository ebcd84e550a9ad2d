package exec_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connectors"
	cexec "github.com/connectord/connectord/connectors/exec"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
)

const secretValue = "hunter2-SECRET-value"

func instantiate(t *testing.T, e connectors.Entry) (*connectors.Instance, error) {
	t.Helper()
	if e.Name == "" {
		e.Name = "src"
	}
	e.Type = cexec.TypeID
	if e.ResourceID == "" {
		e.ResourceID = "127.0.0.1:5000"
	}
	return registry.Default.Instantiate(e, connectors.OSResolver{})
}

func mustInstantiate(t *testing.T, e connectors.Entry) *connectors.Instance {
	t.Helper()
	inst, err := instantiate(t, e)
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// answering returns an entry running the answer script with env.
func answering(method string, env map[string]any, extra map[string]any) connectors.Entry {
	cfg := map[string]any{"command": []any{script("answer"), "get"}, "env": env}
	for k, v := range extra {
		cfg[k] = v
	}
	return connectors.Entry{AuthMethod: method, Config: cfg}
}

func TestCommandMethod(t *testing.T) {
	t.Parallel()
	exp := "2031-05-06T07:08:09Z"
	tests := []struct {
		name   string
		env    map[string]any
		extra  map[string]any
		rid    string
		stdin  string   // what the command must have read
		want   string   // username on success
		exp    string   // ExpiresAt on success ("" = none stated)
		errHas []string // error substrings; none = success
		errNot []string
	}{
		{name: "helper json with expiry", rid: "127.0.0.1:5000/team/app", stdin: "127.0.0.1:5000\n",
			env:  map[string]any{"ANSWER": `{"ServerURL":"127.0.0.1:5000","Username":"alice","Secret":"` + secretValue + `","ExpiresAt":"` + exp + `"}`},
			want: "alice", exp: exp},
		{name: "no expiry stated", rid: "127.0.0.1:5000", stdin: "127.0.0.1:5000\n",
			env:  map[string]any{"ANSWER": `{"Username":"alice","Secret":"` + secretValue + `"}`},
			want: "alice"},
		{name: "docker hub is asked by docker's key", rid: "docker.io/library/alpine", stdin: "https://index.docker.io/v1/\n",
			env:  map[string]any{"ANSWER": `{"Username":"<token>","Secret":"` + secretValue + `"}`},
			want: "<token>"},
		{name: "non-zero exit quotes stderr, redacted, never stdout", rid: "127.0.0.1:5000",
			env: map[string]any{"CODE": "3", "ERR": "login failed for token " + secretValue + "\n\tplease retry",
				"ANSWER": `{"Username":"alice","Secret":"` + secretValue + `","Note":"STDOUT-MARKER"}`},
			errHas: []string{"command " + script("answer") + " failed: exit status 3", "stderr: login failed for token [REDACTED] please retry"},
			errNot: []string{secretValue, "STDOUT-MARKER"}},
		{name: "bad json", rid: "127.0.0.1:5000",
			env:    map[string]any{"ANSWER": "STDOUT-MARKER " + secretValue, "ERR": "warning: config missing"},
			errHas: []string{"not a credential helper's JSON object", "stderr: warning: config missing"},
			errNot: []string{secretValue, "STDOUT-MARKER"}},
		{name: "no secret", rid: "127.0.0.1:5000", env: map[string]any{"ANSWER": `{"Username":"alice"}`},
			errHas: []string{`no "Secret"`}},
		{name: "bad expiry", rid: "127.0.0.1:5000", env: map[string]any{"ANSWER": `{"Username":"a","Secret":"` + secretValue + `","ExpiresAt":"tomorrow"}`, "ERR": "echo " + secretValue},
			errHas: []string{`"ExpiresAt" "tomorrow" is not an RFC 3339 time`, "stderr: echo [REDACTED]"}, errNot: []string{secretValue}},
		{name: "docker helper's not found", rid: "127.0.0.1:5000", env: map[string]any{"ANSWER": "credentials not found in native keychain", "CODE": "1"},
			errHas: []string{"has no credentials for 127.0.0.1:5000", "credentials not found in native keychain"}},
		{name: "timeout kills the command and its children", rid: "127.0.0.1:5000", env: map[string]any{"SLEEP": "30"}, extra: map[string]any{"timeout": "300ms"},
			errHas: []string{"timed out after 300ms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			env := map[string]any{"OUT_DIR": out}
			for k, v := range tc.env {
				env[k] = v
			}
			inst := mustInstantiate(t, answering(cexec.AuthCommand, env, tc.extra))
			start := time.Now()
			cred, err := inst.Credentials(t.Context(), resourceid.MustParse(tc.rid))
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("the run took %s", took)
			}
			if len(tc.errHas) > 0 {
				if err == nil {
					t.Fatalf("Credentials = %v, want an error", cred)
				}
				for _, s := range tc.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for _, s := range tc.errNot {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cred.Username != tc.want || cred.Secret.Reveal() != secretValue || cred.Scope != connectors.ScopeRegistry {
				t.Fatalf("Credentials = %v (%s), want user %s", cred, cred.Secret.Reveal(), tc.want)
			}
			if (tc.exp == "") != cred.ExpiresAt.IsZero() || (tc.exp != "" && cred.ExpiresAt.Format(time.RFC3339) != tc.exp) {
				t.Errorf("ExpiresAt = %s, want %q", cred.ExpiresAt, tc.exp)
			}
			stdin, _ := os.ReadFile(filepath.Join(out, "stdin"))
			args, _ := os.ReadFile(filepath.Join(out, "args"))
			if string(stdin) != tc.stdin || string(args) != "get\n" {
				t.Errorf("the command read %q with args %q, want %q and [get]", stdin, args, tc.stdin)
			}
		})
	}
}

func TestCommandOutputIsCapped(t *testing.T) {
	t.Parallel()
	inst := mustInstantiate(t, connectors.Entry{AuthMethod: cexec.AuthCommand, Config: map[string]any{"command": []any{script("big")}}})
	_, err := inst.Credentials(t.Context(), resourceid.MustParse("h"))
	if err == nil || !strings.Contains(err.Error(), "printed more than 1048576 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestCommandNotFound(t *testing.T) {
	t.Parallel()
	inst := mustInstantiate(t, connectors.Entry{AuthMethod: cexec.AuthCommand, Config: map[string]any{"command": []any{"docker-credential-does-not-exist", "get"}}})
	_, err := inst.Credentials(t.Context(), resourceid.MustParse("h"))
	if err == nil || !strings.Contains(err.Error(), `"docker-credential-does-not-exist" not found in PATH`) {
		t.Fatalf("err = %v", err)
	}
}

// The child's environment is PATH, HOME, pass_env and env: never the rest
// of the daemon's environment, which may hold its own secrets.
func TestChildEnvironment(t *testing.T) {
	t.Setenv("CONNECTORD_DAEMON_ONLY", "daemon-"+secretValue)
	t.Setenv("CONNECTORD_PASSED", "passed-value")
	out := t.TempDir()
	inst := mustInstantiate(t, answering(cexec.AuthCommand,
		map[string]any{"OUT_DIR": out, "ANSWER": `{"Username":"a","Secret":"s"}`, "EXTRA": "extra-value"},
		map[string]any{"pass_env": []any{"CONNECTORD_PASSED", "CONNECTORD_UNSET"}}))
	if _, err := inst.Credentials(t.Context(), resourceid.MustParse("h")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "env"))
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	for _, want := range []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CONNECTORD_PASSED=passed-value", "EXTRA=extra-value"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("child environment lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, secretValue) || strings.Contains(env, "CONNECTORD_UNSET") {
		t.Errorf("the daemon's own environment leaked into the child:\n%s", env)
	}
}

func TestConfigure(t *testing.T) {
	t.Parallel()
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name  string
		entry connectors.Entry
		want  string // error substring; "" = valid
	}{
		{"minimal command", connectors.Entry{Config: map[string]any{"command": []any{"docker-credential-pass", "get"}}}, ""},
		{"kubelet plugin", connectors.Entry{AuthMethod: cexec.AuthKubeletPlugin, ResourceID: "*.dkr.ecr.*.amazonaws.com", Config: map[string]any{"command": []any{"/usr/libexec/ecr-credential-provider"}}}, ""},
		{"kubelet v1beta1", connectors.Entry{AuthMethod: cexec.AuthKubeletPlugin, Config: map[string]any{"command": []any{"p"}, "api_version": cexec.APIVersionV1beta1}}, ""},
		{"glob on command", connectors.Entry{ResourceID: "*.example.com", Config: map[string]any{"command": []any{"x"}}}, ""},
		{"shortest lifetime", connectors.Entry{ExpirationSeconds: n(10), Config: map[string]any{"command": []any{"x"}}}, ""},
		{"auth method required", connectors.Entry{AuthMethod: "", Config: map[string]any{"command": []any{"x"}}}, "auth_method: required"},
		{"command required", connectors.Entry{Config: map[string]any{}}, "config.command: required"},
		{"empty command", connectors.Entry{Config: map[string]any{"command": []any{}}}, "needs at least the program"},
		{"command as one string", connectors.Entry{Config: map[string]any{"command": []any{"docker-credential-pass get"}}}, "separate list elements"},
		{"command not a list", connectors.Entry{Config: map[string]any{"command": "docker-credential-pass"}}, "must be an array of strings"},
		{"bad env name", connectors.Entry{Config: map[string]any{"command": []any{"x"}, "env": map[string]any{"A=B": "c"}}}, "invalid variable name"},
		{"bad api version", connectors.Entry{AuthMethod: cexec.AuthKubeletPlugin, Config: map[string]any{"command": []any{"x"}, "api_version": "v2"}}, "not a kubelet credential provider API version"},
		{"lifetime too short", connectors.Entry{ExpirationSeconds: n(5), Config: map[string]any{"command": []any{"x"}}}, "5 is outside 10..43200"},
		{"bad timeout", connectors.Entry{Config: map[string]any{"command": []any{"x"}, "timeout": "soon"}}, "positive duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.entry.AuthMethod == "" && tc.name != "auth method required" {
				tc.entry.AuthMethod = cexec.AuthCommand
			}
			inst, err := instantiate(t, tc.entry)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !inst.Expiring() || inst.Lifetime() <= 0 {
					t.Errorf("an exec connector must be expiring with a lifetime: %v %s", inst.Expiring(), inst.Lifetime())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Instantiate = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	inst := mustInstantiate(t, connectors.Entry{AuthMethod: cexec.AuthCommand, Config: map[string]any{"command": []any{"x"}}})
	if inst.Lifetime() != time.Hour || inst.FetchScope() != connectors.ScopeRegistry {
		t.Errorf("defaults: lifetime %s, fetch scope %s", inst.Lifetime(), inst.FetchScope())
	}
}

func TestKubeletPluginMethod(t *testing.T) {
	t.Parallel()
	const v1 = cexec.APIVersionV1
	resp := func(apiVersion, extra string) string {
		return `{"apiVersion":"` + apiVersion + `","kind":"CredentialProviderResponse","cacheKeyType":"Registry","cacheDuration":"30s",` +
			`"auth":{"*.dkr.ecr.*.amazonaws.com":{"username":"AWS","password":"` + secretValue + `"}` + extra + `}}`
	}
	tests := []struct {
		name   string
		answer string
		rid    string
		image  string
		user   string
		errHas string
	}{
		{"glob key", resp(v1, ""), "123.dkr.ecr.eu-west-1.amazonaws.com/team/app", "123.dkr.ecr.eu-west-1.amazonaws.com/team/app", "AWS", ""},
		{"most specific key wins", resp(v1, `,"123.dkr.ecr.eu-west-1.amazonaws.com":{"username":"exact","password":"p"}`), "123.dkr.ecr.eu-west-1.amazonaws.com/app", "123.dkr.ecr.eu-west-1.amazonaws.com/app", "exact", ""},
		{"wrong api version", resp(cexec.APIVersionV1alpha1, ""), "1.dkr.ecr.x.amazonaws.com", "", "", `answered apiVersion "credentialprovider.kubelet.k8s.io/v1alpha1" to a credentialprovider.kubelet.k8s.io/v1 request`},
		{"no key matches", resp(v1, ""), "1.dkr.ecr.x.amazonaws.com.cn", "", "", "none of the plugin's auth keys matches 1.dkr.ecr.x.amazonaws.com.cn (keys: *.dkr.ecr.*.amazonaws.com)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			inst := mustInstantiate(t, connectors.Entry{AuthMethod: cexec.AuthKubeletPlugin, ResourceID: "*.dkr.ecr.*.amazonaws.com",
				Config: map[string]any{"command": []any{script("answer")}, "env": map[string]any{"OUT_DIR": out, "ANSWER": tc.answer}}})
			cred, err := inst.Credentials(t.Context(), resourceid.MustParse(tc.rid))
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), secretValue) {
					t.Fatalf("err = %v, want %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cred.Username != tc.user || cred.Scope != connectors.ScopeRegistry || time.Until(cred.ExpiresAt) > 30*time.Second || time.Until(cred.ExpiresAt) < 25*time.Second {
				t.Fatalf("cred = %v (scope %s)", cred, cred.Scope)
			}
			stdin, _ := os.ReadFile(filepath.Join(out, "stdin"))
			want := `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"` + tc.image + `"}` + "\n"
			if string(stdin) != want {
				t.Errorf("the plugin read %s, want %s", stdin, want)
			}
		})
	}
}

func TestParseHelperOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		user     string
		exp      string
		err      string
	}{
		{"docker helper", `{"ServerURL":"h","Username":"u","Secret":"s"}`, "u", "", ""},
		{"case-insensitive keys, unknown ignored", `{"username":"u","secret":"s","extra":[1,2]}` + "\n", "u", "", ""},
		{"expiry", `{"Username":"u","Secret":"s","ExpiresAt":"2030-01-02T03:04:05.5+02:00"}`, "u", "2030-01-02T01:04:05.5Z", ""},
		{"null expiry", `{"Username":"u","Secret":"s","ExpiresAt":null}`, "u", "", ""},
		{"empty username", `{"Secret":"s"}`, "", "", ""},
		{"empty", "  \n", "", "", "printed nothing"},
		{"not json", "Username: u", "", "", "invalid JSON at byte 1"},
		{"array", `["s"]`, "", "", "a JSON array, not an object"},
		{"wrong type", `{"Username":"u","Secret":42}`, "", "", `field "Secret" holds a JSON number, not a string`},
		{"two values", `{"Secret":"s"}{"Secret":"t"}`, "", "", "more than one JSON value"},
		{"truncated", `{"Secret":"s"`, "", "", "truncated JSON"},
		{"no secret", `{"Username":"u","Secret":""}`, "", "", `no "Secret"`},
		{"bad expiry", `{"Secret":"s","ExpiresAt":"1700000000"}`, "", "", `"ExpiresAt" "1700000000" is not an RFC 3339 time`},
	}
	for _, tc := range tests {
		cred, err := cexec.ParseHelperOutput([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !errors.Is(err, cexec.ErrBadOutput) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if cred.Username != tc.user || cred.Secret.Reveal() != "s" || (tc.exp == "") != cred.ExpiresAt.IsZero() ||
			(tc.exp != "" && cred.ExpiresAt.UTC().Format(time.RFC3339Nano) != tc.exp) {
			t.Errorf("%s: %v %s", tc.name, cred, cred.ExpiresAt)
		}
	}
}

func TestParseKubeletResponse(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	const v1 = cexec.APIVersionV1
	body := func(fields string) string {
		return `{"apiVersion":"` + v1 + `","kind":"CredentialProviderResponse",` + fields + `}`
	}
	auth := `"auth":{"gcr.io":{"username":"_token","password":"pw"},"*.gcr.io":{"username":"glob","password":"pw"},"us-docker.pkg.dev/proj":{"username":"proj","password":"pw"},"not a key!":{"username":"x","password":"pw"}}`
	tests := []struct {
		name, in, image string
		user            string
		scope           connectors.CacheScope
		expires         time.Duration // 0: none stated
		err             string
	}{
		{"registry scope", body(`"cacheKeyType":"Registry","cacheDuration":"1h",` + auth), "gcr.io/proj/app", "_token", connectors.ScopeRegistry, time.Hour, ""},
		{"image scope glob key", body(`"cacheKeyType":"Image","cacheDuration":"5m0s",` + auth), "eu.gcr.io/proj/app", "glob", connectors.ScopeImage, 5 * time.Minute, ""},
		{"global, no duration", body(`"cacheKeyType":"Global",` + auth), "us-docker.pkg.dev/proj/app", "proj", connectors.ScopeGlobal, 0, ""},
		{"zero duration: do not cache", body(`"cacheKeyType":"Image","cacheDuration":"0s",` + auth), "gcr.io/x", "_token", connectors.ScopeNone, 0, ""},
		{"path key does not cover another path", body(`"cacheKeyType":"Image",` + auth), "us-docker.pkg.dev/other/app", "", 0, 0, "none of the plugin's auth keys matches"},
		{"wrong api version", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderResponse","cacheKeyType":"Image"}`, "gcr.io/x", "", 0, 0, "answered apiVersion"},
		{"no api version", `{"kind":"CredentialProviderResponse","cacheKeyType":"Image"}`, "gcr.io/x", "", 0, 0, `answered apiVersion ""`},
		{"wrong kind", `{"apiVersion":"` + v1 + `","kind":"CredentialProviderRequest","cacheKeyType":"Image"}`, "gcr.io/x", "", 0, 0, "kind"},
		{"bad cache key type", body(`"cacheKeyType":"Repository"`), "gcr.io/x", "", 0, 0, "cacheKeyType"},
		{"bad duration", body(`"cacheKeyType":"Image","cacheDuration":"1 day"`), "gcr.io/x", "", 0, 0, "cacheDuration"},
		{"negative duration", body(`"cacheKeyType":"Image","cacheDuration":"-1h"`), "gcr.io/x", "", 0, 0, "cacheDuration"},
		{"no auth", body(`"cacheKeyType":"Image","auth":null`), "gcr.io/x", "", 0, 0, "no credentials for gcr.io/x"},
		{"not json", "oops", "gcr.io/x", "", 0, 0, "not a CredentialProviderResponse"},
	}
	for _, tc := range tests {
		resp, err := cexec.ParseKubeletResponse([]byte(tc.in), v1)
		var cred connectors.Credentials
		if err == nil {
			cred, err = resp.Credentials(resourceid.MustParse(tc.image), now)
		}
		if tc.err != "" {
			if err == nil || !errors.Is(err, cexec.ErrBadOutput) || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		wantExp := time.Time{}
		if tc.expires > 0 {
			wantExp = now.Add(tc.expires)
		}
		if cred.Username != tc.user || cred.Scope != tc.scope || !cred.ExpiresAt.Equal(wantExp) || cred.Secret.Reveal() != "pw" {
			t.Errorf("%s: got %s scope %s expires %s", tc.name, cred.Username, cred.Scope, cred.ExpiresAt)
		}
	}
}
