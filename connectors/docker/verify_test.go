package docker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

const pass = "verify-pass-S3CRET"

// instantiate builds a docker connector through the type registry, as the
// config does.
func instantiate(t *testing.T, host, password string, extra map[string]any) *connectors.Instance {
	t.Helper()
	cfg := map[string]any{"username": "alice", "password": password}
	for k, v := range extra {
		cfg[k] = v
	}
	inst, err := registry.Default.Instantiate(connectors.Entry{Name: "lab", Type: TypeID, ResourceID: host, Config: cfg}, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

// trust makes the connector trust r's CA: in the daemon that is
// SSL_CERT_FILE, which Go reads once per process, so tests with several
// CAs inject a client instead.
func trust(t *testing.T, inst *connectors.Instance, r *testenv.Registry) {
	t.Helper()
	pemData, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	inst.Impl().(*Connector).client = &http.Client{Transport: tr}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   testenv.RegistryOptions
		scheme string
		auth   string
	}{
		{"htpasswd over HTTP", testenv.RegistryOptions{}, "http", "basic"},
		{"htpasswd over TLS", testenv.RegistryOptions{TLS: true}, "https", "basic"},
		{"token auth", testenv.RegistryOptions{TokenAuth: true}, "http", "bearer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			opts.Users = map[string]string{"alice": pass}
			r := testenv.StartRegistry(t, opts)
			r.SeedImage(t, "alice/app", "v1", "alice", pass)

			inst := instantiate(t, r.Host, pass, nil)
			if tc.opts.TLS {
				trust(t, inst, r)
			}
			res, err := inst.Verify(t.Context(), inst.RID)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := connectors.Resources{ResourceType: connectors.ResourceTypeDockerRegistry, ResourceID: r.Host,
				Repositories: []string{"alice/app"}, Endpoint: tc.scheme + "://" + r.Host, Auth: tc.auth}
			if !slices.Equal(res.Repositories, want.Repositories) || res.ResourceType != want.ResourceType ||
				res.ResourceID != want.ResourceID || res.Endpoint != want.Endpoint || res.Auth != want.Auth || res.Note != "" {
				t.Errorf("Verify = %+v, want %+v", res, want)
			}

			// A narrower resource id lists only what is under it.
			res, err = inst.Verify(t.Context(), resourceid.MustParse(r.Host+"/bob"))
			if err != nil || len(res.Repositories) != 0 || res.ResourceID != r.Host+"/bob" {
				t.Errorf("Verify under bob = %+v, %v", res, err)
			}

			bad := instantiate(t, r.Host, "wrong-S3CRET", nil)
			if tc.opts.TLS {
				trust(t, bad, r)
			}
			_, err = bad.Verify(t.Context(), bad.RID)
			if !errors.Is(err, regauth.ErrUnauthorized) {
				t.Fatalf("Verify with a wrong password: %v, want regauth.ErrUnauthorized", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, `connector "lab": authentication failed at `+r.Host+": wrong username or password") || strings.Contains(msg, "S3CRET") {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestInsecureField(t *testing.T) {
	t.Parallel()
	inst := instantiate(t, "registry.example", pass, map[string]any{"insecure": true})
	if c := inst.Impl().(*Connector); !c.insecure {
		t.Error("insecure = true not applied")
	}
	if got := inst.Config.Redacted()["insecure"]; got != true {
		t.Errorf("describe shows insecure = %v", got)
	}
	if _, err := registry.Default.Instantiate(connectors.Entry{Name: "x", Type: TypeID, ResourceID: "r.example",
		Config: map[string]any{"username": "u", "password": "p", "insecure": "yes"}}, connectors.OSResolver{}); err == nil {
		t.Error(`insecure = "yes" accepted`)
	}
	if c := instantiate(t, "registry.example", pass, nil).Impl().(*Connector); c.insecure {
		t.Error("insecure defaults to true")
	}
}

func TestFromCredentials(t *testing.T) {
	t.Parallel()
	r := testenv.StartTokenRegistry(t, map[string]string{"alice": pass})
	r.SeedImage(t, "alice/app", "v1", "alice", pass)
	lr, err := regauth.Login(t.Context(), r.Host, "alice", secret.New(pass), regauth.Options{})
	if err != nil || !lr.Credentials.IsIdentityToken() {
		t.Fatalf("Login = %+v, %v", lr, err)
	}
	// A stored identity token verifies like a password.
	c := FromCredentials(lr.Credentials.Username, lr.Credentials.Secret)
	res, err := c.Verify(t.Context(), resourceid.MustParse(r.Host))
	if err != nil || !slices.Equal(res.Repositories, []string{"alice/app"}) || res.Auth != "bearer" {
		t.Errorf("Verify with an identity token = %+v, %v", res, err)
	}
}
