package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// tokenResponse is the token server's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

// fetchToken asks r's token server for a token by the GET flow, with basic
// auth, and returns the status and the decoded answer.
func fetchToken(t *testing.T, c *http.Client, r *Registry, user, pass string, offline bool, scopes ...string) (int, tokenResponse) {
	t.Helper()
	u, err := url.Parse(r.TokenRealm)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"service": {r.TokenService}, "scope": scopes}
	if offline {
		q.Set("offline_token", "true")
		q.Set("client_id", "testenv")
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	return doToken(t, c, req)
}

func doToken(t *testing.T, c *http.Client, req *http.Request) (int, tokenResponse) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			t.Fatalf("decoding the token answer: %v", err)
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, tr
}

// bearerGet returns the status of GET r.URL+path with the token.
func bearerGet(t *testing.T, c *http.Client, r *Registry, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(body)
}

func TestTokenRegistry(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		name := "http"
		if tlsOn {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			users := map[string]string{"alice": "alice-pass", "bob": "bob-pass"}
			r := StartRegistry(t, RegistryOptions{Users: users, TokenAuth: true, TLS: tlsOn})
			c := httpClient(t, r)
			wantRealm := "http://localhost:"
			if tlsOn {
				wantRealm = "https://localhost:"
			}
			if !strings.HasPrefix(r.TokenRealm, wantRealm) || !strings.HasSuffix(r.TokenRealm, "/token/") || r.TokenService == "" {
				t.Fatalf("TokenRealm %q TokenService %q", r.TokenRealm, r.TokenService)
			}

			// The registry sends clients to the token server.
			req, _ := http.NewRequest(http.MethodGet, r.URL+"/v2/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") ||
				!strings.Contains(challenge, `realm="`+r.TokenRealm+`"`) || !strings.Contains(challenge, `service="`+r.TokenService+`"`) {
				t.Fatalf("GET /v2/ = %d with challenge %q", resp.StatusCode, challenge)
			}

			if code, _ := fetchToken(t, c, r, "alice", "wrong", false); code != http.StatusUnauthorized {
				t.Errorf("token with a wrong password: %d, want 401", code)
			}

			// SeedImage authenticates through the token server (crane does).
			digest := r.SeedImage(t, "alice/app", "v1", "alice", "alice-pass")

			code, tok := fetchToken(t, c, r, "alice", "alice-pass", true, "repository:alice/app:pull", "registry:catalog:*")
			if code != http.StatusOK || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn <= 0 {
				t.Fatalf("offline token for alice: %d %+v", code, tok)
			}
			if code, _ := bearerGet(t, c, r, "/v2/", tok.AccessToken); code != http.StatusOK {
				t.Errorf("GET /v2/ with alice's token: %d", code)
			}
			if code, body := bearerGet(t, c, r, "/v2/_catalog", tok.AccessToken); code != http.StatusOK || !strings.Contains(body, `"alice/app"`) {
				t.Errorf("catalog with alice's token: %d %s", code, body)
			}
			req, _ = http.NewRequest(http.MethodGet, r.URL+"/v2/alice/app/manifests/v1", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
			resp, err = c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != digest {
				t.Errorf("manifest alice/app:v1: %d digest %q, want 200 %s", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), digest)
			}

			// Only the user's own namespace: bob gets a token, but not for alice/app.
			code, bobTok := fetchToken(t, c, r, "bob", "bob-pass", false, "repository:alice/app:pull")
			if code != http.StatusOK {
				t.Fatalf("token for bob: %d", code)
			}
			if code, _ := bearerGet(t, c, r, "/v2/alice/app/tags/list", bobTok.AccessToken); code != http.StatusUnauthorized {
				t.Errorf("bob listing alice/app: %d, want 401", code)
			}

			// The OAuth2 refresh grant (what a client does with an identity token).
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
				"service": {r.TokenService}, "client_id": {"testenv"}, "scope": {"repository:alice/app:pull"}}
			req, _ = http.NewRequest(http.MethodPost, r.TokenRealm, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			code, refreshed := doToken(t, c, req)
			if code != http.StatusOK || refreshed.AccessToken == "" {
				t.Fatalf("refresh grant: %d %+v", code, refreshed)
			}
			if code, _ := bearerGet(t, c, r, "/v2/alice/app/tags/list", refreshed.AccessToken); code != http.StatusOK {
				t.Errorf("tags list with the refreshed token: %d", code)
			}

			// Users change while it runs, as with htpasswd.
			r.SetUsers(t, map[string]string{"carol": "carol-pass"})
			eventually(t, "carol accepted after SetUsers", func() bool {
				code, _ := fetchToken(t, c, r, "carol", "carol-pass", false)
				return code == http.StatusOK
			})
			if code, _ := fetchToken(t, c, r, "alice", "alice-pass", false); code != http.StatusUnauthorized {
				t.Errorf("alice after SetUsers without her: %d, want 401", code)
			}
			if _, err := os.Stat(r.token.certFile); err != nil {
				t.Errorf("rootcertbundle: %v", err)
			}
		})
	}
}
