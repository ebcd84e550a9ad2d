package regauth_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/secret"
)

// fakeRegistry is a registry and token server in one handler, for the
// cases the real ones cannot be made to produce.
type fakeRegistry struct {
	bearer        bool
	refreshToken  string // issued when the GET asks offline_token=true
	refuseRefresh bool   // the refresh grant answers 401
	rotate        bool   // the refresh grant retires the token and issues a new one
	tokenBody     string // overrides the GET token answer
	catalogStatus int    // non-zero: /v2/_catalog answers this
	v2Status      int    // non-zero: /v2/ answers this
	realm         string // overrides the challenge's realm

	mu    sync.Mutex
	query url.Values // the last GET /token query
	host  string
}

const fakeUser, fakePass, fakeAccess = "alice", "fake-pass-S3CRET", "fake-access-S3CRET"

func (f *fakeRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, _ := r.BasicAuth()
	goodBasic := user == fakeUser && pass == fakePass
	switch {
	case r.URL.Path == "/token" && r.Method == http.MethodGet:
		f.mu.Lock()
		f.query = r.URL.Query()
		f.mu.Unlock()
		if !goodBasic {
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "bad credentials")
			return
		}
		if f.tokenBody != "" {
			fmt.Fprint(w, f.tokenBody)
			return
		}
		resp := map[string]any{"access_token": fakeAccess, "expires_in": 300}
		f.mu.Lock()
		if r.URL.Query().Get("offline_token") == "true" && f.refreshToken != "" {
			resp["refresh_token"] = f.refreshToken
		}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(resp)
		return
	case r.URL.Path == "/token" && r.Method == http.MethodPost:
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.refuseRefresh || r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("refresh_token") != f.refreshToken {
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "invalid refresh token")
			return
		}
		resp := map[string]any{"access_token": fakeAccess, "expires_in": 300}
		if f.rotate {
			f.refreshToken += "-next"
			resp["refresh_token"] = f.refreshToken
		}
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	authorized := goodBasic
	if f.bearer {
		authorized = r.Header.Get("Authorization") == "Bearer "+fakeAccess
	}
	if !authorized {
		if f.bearer {
			realm := "http://" + f.host + "/token"
			if f.realm != "" {
				realm = f.realm
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="fake"`, realm))
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		}
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	switch {
	case r.URL.Path == "/v2/" && f.v2Status != 0:
		w.WriteHeader(f.v2Status)
	case r.URL.Path == "/v2/":
		fmt.Fprint(w, "{}")
	case r.URL.Path == "/v2/_catalog" && f.catalogStatus != 0:
		writeErr(w, f.catalogStatus, "DENIED", "no catalog for you")
	case r.URL.Path == "/v2/_catalog":
		fmt.Fprint(w, `{"repositories":["team/b","team/a","other/c"]}`)
	case r.URL.Path == "/v2/team/a/tags/list":
		fmt.Fprint(w, `{"name":"team/a","tags":["v1"]}`)
	default:
		writeErr(w, http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry")
	}
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
}

func startFake(t *testing.T, f *fakeRegistry) string {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.host = strings.TrimPrefix(srv.URL, "http://")
	return f.host
}

func TestCatalogNotAvailable(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			f := &fakeRegistry{catalogStatus: status}
			host := startFake(t, f)
			res, err := regauth.Verify(ctx(t), host, "", cred(fakeUser, fakePass), regauth.Options{})
			if err != nil || len(res.Repositories) != 0 || res.Note != "catalog not available: DENIED: no catalog for you" {
				t.Errorf("Verify with catalog %d = %+v, %v", status, res, err)
			}
			// With a path, the repository itself is checked instead.
			res, err = regauth.Verify(ctx(t), host, "team/a", cred(fakeUser, fakePass), regauth.Options{})
			if err != nil || !slices.Equal(res.Repositories, []string{"team/a"}) {
				t.Errorf("Verify team/a with catalog %d = %+v, %v", status, res, err)
			}
			res, err = regauth.Verify(ctx(t), host, "team/zzz", cred(fakeUser, fakePass), regauth.Options{})
			if err != nil || len(res.Repositories) != 0 || !strings.Contains(res.Note, "repository team/zzz not listable: NAME_UNKNOWN") {
				t.Errorf("Verify team/zzz with catalog %d = %+v, %v", status, res, err)
			}
		})
	}
	// Any other failure of the catalog fails the verification.
	f := &fakeRegistry{catalogStatus: http.StatusInternalServerError}
	host := startFake(t, f)
	if _, err := regauth.Verify(ctx(t), host, "", cred(fakeUser, fakePass), regauth.Options{}); !errors.Is(err, regauth.ErrProtocol) {
		t.Errorf("Verify with a catalog answering 500: %v, want ErrProtocol", err)
	}
}

func TestCatalogPrefix(t *testing.T) {
	t.Parallel()
	host := startFake(t, &fakeRegistry{})
	res, err := regauth.Verify(ctx(t), host, "team", cred(fakeUser, fakePass), regauth.Options{})
	if err != nil || !slices.Equal(res.Repositories, []string{"team/a", "team/b"}) {
		t.Errorf("Verify under team = %+v, %v", res, err)
	}
}

func TestNotARegistry(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, err := regauth.Verify(ctx(t), strings.TrimPrefix(srv.URL, "http://"), "", cred(fakeUser, fakePass), regauth.Options{})
	if !errors.Is(err, regauth.ErrNotRegistry) {
		t.Errorf("Verify against a web server: %v, want ErrNotRegistry", err)
	}
}

func TestLoginAsksForRefreshToken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		f            *fakeRegistry
		wantIdentity bool
		wantNote     string
	}{
		{"issued and accepted", &fakeRegistry{bearer: true, refreshToken: "refresh-S3CRET"}, true, ""},
		{"none issued", &fakeRegistry{bearer: true}, false, ""},
		{"issued then refused", &fakeRegistry{bearer: true, refreshToken: "refresh-S3CRET", refuseRefresh: true}, false, "refused it"},
		{"rotated on use", &fakeRegistry{bearer: true, refreshToken: "refresh-S3CRET", rotate: true}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			host := startFake(t, tc.f)
			lr, err := regauth.Login(ctx(t), host, fakeUser, secret.New(fakePass), regauth.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The token request asked as docker does, with no scope.
			tc.f.mu.Lock()
			q := tc.f.query
			tc.f.mu.Unlock()
			if q.Get("offline_token") != "true" || q.Get("client_id") != regauth.ClientID || q.Get("service") != "fake" || q.Has("scope") && q.Get("scope") != "" {
				t.Errorf("token request query %v", q)
			}
			if tc.wantIdentity {
				tc.f.mu.Lock()
				current := tc.f.refreshToken // the newest, when rotated
				tc.f.mu.Unlock()
				if lr.Credentials.Username != regauth.TokenUsername || lr.Credentials.Secret.Reveal() != current {
					t.Errorf("Login stored %q, want the identity token", lr.Credentials.Username)
				}
			} else if lr.Credentials.Username != fakeUser || lr.Credentials.Secret.Reveal() != fakePass {
				t.Errorf("Login stored %q, want the password", lr.Credentials.Username)
			}
			if !strings.Contains(lr.Note, tc.wantNote) || (tc.wantNote == "" && lr.Note != "") {
				t.Errorf("note %q, want %q", lr.Note, tc.wantNote)
			}
			if strings.Contains(lr.Note, "S3CRET") {
				t.Errorf("note holds a secret: %q", lr.Note)
			}
		})
	}
}

func TestRealmRefused(t *testing.T) {
	t.Parallel()
	// A realm on a private address other than the registry's own is
	// refused before any request is sent there (go-containerregistry's
	// rule), and the error says why.
	host := startFake(t, &fakeRegistry{bearer: true, realm: "http://10.9.9.9/token"})
	_, err := regauth.Verify(ctx(t), host, "", cred(fakeUser, fakePass), regauth.Options{})
	if !errors.Is(err, regauth.ErrProtocol) || !strings.Contains(err.Error(), "private or link-local") || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("Verify with a private realm: %v", err)
	}
}

func TestTokenBodyNotQuoted(t *testing.T) {
	t.Parallel()
	// A token answer without a token, but with a refresh token in it:
	// the error must say what went wrong without quoting the body.
	f := &fakeRegistry{bearer: true, tokenBody: `{"refresh_token":"leaked-S3CRET"}`}
	host := startFake(t, f)
	_, err := regauth.Login(ctx(t), host, fakeUser, secret.New(fakePass), regauth.Options{})
	if !errors.Is(err, regauth.ErrProtocol) || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("Login with a token-less answer: %v, want ErrProtocol without the body", err)
	}
}

// handlerTransport serves plain-HTTP requests from a handler and fails
// HTTPS ones as net/http does against a plain-HTTP server: no network.
type handlerTransport struct {
	h http.Handler

	mu   sync.Mutex
	seen []string
}

func (ht *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ht.mu.Lock()
	ht.seen = append(ht.seen, r.URL.Scheme+"://"+r.URL.Host)
	ht.mu.Unlock()
	if r.URL.Scheme == "https" {
		return nil, &url.Error{Op: r.Method, URL: r.URL.String(), Err: errors.New("http: server gave HTTP response to HTTPS client")}
	}
	rec := httptest.NewRecorder()
	ht.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func TestPlainHTTPPolicy(t *testing.T) {
	t.Parallel()
	// Hosts not on loopback, answered by the handler (nothing is sent
	// anywhere): 10.x is one go-containerregistry would try over plain
	// HTTP by itself.
	for _, host := range []string{"registry.example:5000", "10.1.2.3:5000"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			f := &fakeRegistry{host: host}
			ht := &handlerTransport{h: f}
			opts := regauth.Options{Client: &http.Client{Transport: ht}}
			_, err := regauth.Verify(ctx(t), host, "", cred(fakeUser, fakePass), opts)
			if !errors.Is(err, regauth.ErrInsecure) {
				t.Fatalf("Verify over plain HTTP to %s: %v, want ErrInsecure", host, err)
			}
			ht.mu.Lock()
			for _, s := range ht.seen {
				if strings.HasPrefix(s, "http://") {
					t.Errorf("a plain-HTTP request reached the transport: %s", s)
				}
			}
			ht.mu.Unlock()

			opts.Insecure = true
			res, err := regauth.Verify(ctx(t), host, "", cred(fakeUser, fakePass), opts)
			if err != nil || res.URL != "http://"+host || !slices.Equal(res.Repositories, []string{"other/c", "team/a", "team/b"}) {
				t.Errorf("Verify with Insecure = %+v, %v", res, err)
			}
		})
	}
}
