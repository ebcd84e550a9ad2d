package regauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/secret"
)

// clientFor trusts r's CA, if it has one, and uses no proxy.
func clientFor(t *testing.T, r *testenv.Registry) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{}}
	if r != nil && r.CAFile != "" {
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
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func cred(user, pass string) regauth.Credentials {
	return regauth.Credentials{Username: user, Secret: secret.New(pass)}
}

// noSecret fails if err's text holds one of secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error text holds a secret: %v", err)
		}
	}
}

const (
	alicePass = "alice-pass-S3CRET"
	wrongPass = "wrong-pass-S3CRET"
)

// registries starts one registry of each kind this package must handle,
// each with alice and an image at alice/app:v1 (and team/tool:v1 where
// the token server's namespace rule allows it).
type kind struct {
	name     string
	opts     testenv.RegistryOptions
	auth     regauth.Auth
	scheme   string
	wantRepo []string
}

var kinds = []kind{
	{"htpasswd-http", testenv.RegistryOptions{}, regauth.AuthBasic, "http", []string{"alice/app", "team/tool"}},
	{"htpasswd-tls", testenv.RegistryOptions{TLS: true}, regauth.AuthBasic, "https", []string{"alice/app", "team/tool"}},
	{"token-http", testenv.RegistryOptions{TokenAuth: true}, regauth.AuthBearer, "http", []string{"alice/app"}},
	{"token-tls", testenv.RegistryOptions{TokenAuth: true, TLS: true}, regauth.AuthBearer, "https", []string{"alice/app"}},
}

func start(t *testing.T, k kind) *testenv.Registry {
	t.Helper()
	opts := k.opts
	opts.Users = map[string]string{"alice": alicePass}
	r := testenv.StartRegistry(t, opts)
	for _, repo := range k.wantRepo {
		r.SeedImage(t, repo, "v1", "alice", alicePass)
	}
	return r
}

func TestVerifyAndLogin(t *testing.T) {
	t.Parallel()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, k)
			opts := regauth.Options{Client: clientFor(t, r)}

			res, err := regauth.Verify(ctx(t), r.Host, "", cred("alice", alicePass), opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Auth != k.auth || res.URL != k.scheme+"://"+r.Host || !slices.Equal(res.Repositories, k.wantRepo) || res.Note != "" {
				t.Errorf("Verify = %+v, want auth %s over %s listing %v", res, k.auth, k.scheme, k.wantRepo)
			}
			if k.auth == regauth.AuthBearer && (res.Realm != r.TokenRealm || res.Service != r.TokenService) {
				t.Errorf("bearer endpoint %+v, want realm %s service %s", res.Endpoint, r.TokenRealm, r.TokenService)
			}

			// A repository path narrows the list.
			res, err = regauth.Verify(ctx(t), r.Host, "alice", cred("alice", alicePass), opts)
			if err != nil || !slices.Equal(res.Repositories, []string{"alice/app"}) {
				t.Errorf("Verify under alice = %+v, %v", res, err)
			}

			for _, bad := range []regauth.Credentials{cred("alice", wrongPass), cred("mallory", alicePass), {}} {
				_, err = regauth.Verify(ctx(t), r.Host, "", bad, opts)
				if !errors.Is(err, regauth.ErrUnauthorized) {
					t.Fatalf("Verify as %q with a wrong password: %v, want ErrUnauthorized", bad.Username, err)
				}
				if msg := err.Error(); !strings.Contains(msg, "authentication failed at "+r.Host+": wrong username or password") {
					t.Errorf("message %q", msg)
				}
				noSecret(t, err, alicePass, wrongPass)
			}
			var rerr *regauth.Error
			if !errors.As(err, &rerr) || rerr.Status != http.StatusUnauthorized || rerr.Host != r.Host {
				t.Errorf("error %#v, want *regauth.Error with status 401", err)
			}

			// Login: the password where there is no token server; an
			// identity token (not the password) where there is one.
			lr, err := regauth.Login(ctx(t), r.Host, "alice", secret.New(alicePass), opts)
			if err != nil {
				t.Fatalf("Login: %v", err)
			}
			switch k.auth {
			case regauth.AuthBasic:
				if lr.Credentials.Username != "alice" || lr.Credentials.Secret.Reveal() != alicePass {
					t.Errorf("Login on basic auth returned %q / (secret equal to password: %v)", lr.Credentials.Username, lr.Credentials.Secret.Reveal() == alicePass)
				}
			case regauth.AuthBearer:
				if !lr.Credentials.IsIdentityToken() || lr.Credentials.Secret.IsZero() || lr.Credentials.Secret.Reveal() == alicePass || lr.Note != "" {
					t.Fatalf("Login on token auth returned username %q, empty secret %v, secret is the password %v, note %q",
						lr.Credentials.Username, lr.Credentials.Secret.IsZero(), lr.Credentials.Secret.Reveal() == alicePass, lr.Note)
				}
				// The identity token verifies on its own (the refresh grant).
				res, err := regauth.Verify(ctx(t), r.Host, "", lr.Credentials, opts)
				if err != nil || !slices.Equal(res.Repositories, k.wantRepo) {
					t.Errorf("Verify with the identity token = %+v, %v", res, err)
				}
				_, err = regauth.Verify(ctx(t), r.Host, "", cred(regauth.TokenUsername, "not-a-refresh-token"), opts)
				if !errors.Is(err, regauth.ErrUnauthorized) {
					t.Errorf("Verify with a bogus identity token: %v, want ErrUnauthorized", err)
				}
			}
			if s := fmt.Sprintf("%v %+v %#v", lr, lr, lr.Credentials); strings.Contains(s, alicePass) || strings.Contains(s, lr.Credentials.Secret.Reveal()) {
				t.Errorf("a printed LoginResult shows a secret: %s", s)
			}

			_, err = regauth.Login(ctx(t), r.Host, "alice", secret.New(wrongPass), opts)
			if !errors.Is(err, regauth.ErrUnauthorized) {
				t.Errorf("Login with a wrong password: %v, want ErrUnauthorized", err)
			}
			noSecret(t, err, alicePass, wrongPass)
		})
	}
}

func TestVerifyTLSUntrusted(t *testing.T) {
	t.Parallel()
	r := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Users: map[string]string{"alice": alicePass}})
	_, err := regauth.Verify(ctx(t), r.Host, "", cred("alice", alicePass), regauth.Options{Client: clientFor(t, nil)})
	if !errors.Is(err, regauth.ErrTLS) || !strings.Contains(err.Error(), "SSL_CERT_FILE") {
		t.Errorf("Verify against an untrusted certificate: %v, want ErrTLS naming SSL_CERT_FILE", err)
	}
}

func TestVerifyOpenRegistry(t *testing.T) {
	t.Parallel()
	r := testenv.StartRegistry(t, testenv.RegistryOptions{})
	r.SeedImage(t, "pub/app", "v1", "", "")
	res, err := regauth.Verify(ctx(t), r.Host, "", cred("anyone", "anything"), regauth.Options{Client: clientFor(t, r)})
	if err != nil || res.Auth != regauth.AuthNone || !slices.Equal(res.Repositories, []string{"pub/app"}) || !strings.Contains(res.Note, "asks for no credentials") {
		t.Errorf("Verify on an open registry = %+v, %v", res, err)
	}
}

func TestVerifyUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = regauth.Verify(ctx(t), host, "", cred("alice", alicePass), regauth.Options{Client: clientFor(t, nil)})
	if !errors.Is(err, regauth.ErrUnreachable) || !strings.HasPrefix(err.Error(), host+": cannot reach the registry") {
		t.Errorf("Verify against a closed port: %v, want ErrUnreachable", err)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.1.2.3": true, "localhost:5000": true, "LOCALHOST": true,
		"[::1]:5000": true, "::1": true, "[::ffff:127.0.0.1]:80": true,
		"10.0.0.1:5000": false, "192.168.1.1": false, "registry.example:5000": false,
		"localhost.example": false, "[::2]:5000": false, "": false,
	} {
		if got := regauth.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestBadHost(t *testing.T) {
	t.Parallel()
	_, err := regauth.Login(ctx(t), "bad host/x", "alice", secret.New(alicePass), regauth.Options{})
	if !errors.Is(err, regauth.ErrBadHost) {
		t.Errorf("Login to a bad host: %v, want ErrBadHost", err)
	}
}
