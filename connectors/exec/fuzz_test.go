package exec_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connectors"
	cexec "github.com/connectord/connectord/connectors/exec"
	"github.com/connectord/connectord/resourceid"
)

// FuzzParseHelperOutput feeds the `command` method's parser what any
// program could print. More seeds live in
// testdata/fuzz/FuzzParseHelperOutput.
func FuzzParseHelperOutput(f *testing.F) {
	for _, s := range []string{
		`{"ServerURL":"h","Username":"u","Secret":"s"}`,
		`{"Username":"<token>","Secret":"s","ExpiresAt":"2030-01-02T03:04:05Z"}`,
		`{"Secret":"s","ExpiresAt":"not a time"}`,
		`credentials not found in native keychain`,
		`{"Secret":"s"} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cred, err := cexec.ParseHelperOutput(b)
		if err != nil {
			if !errors.Is(err, cexec.ErrBadOutput) {
				t.Fatalf("error %v does not wrap ErrBadOutput", err)
			}
			// A secret long enough to be unmistakable must not be quoted
			// (unless it is also the ExpiresAt text, which is quoted).
			if s := cred.Secret.Reveal(); len(s) >= 16 && strings.Contains(err.Error(), s) && !strings.Contains(string(b), `"ExpiresAt":"`+s) {
				t.Fatalf("error %q quotes the secret", err)
			}
			return
		}
		if cred.Secret.Reveal() == "" || cred.Scope != connectors.ScopeRegistry {
			t.Fatalf("accepted output without a secret or with scope %s", cred.Scope)
		}
	})
}

// FuzzParseKubeletResponse feeds the kubelet-plugin parser what any
// plugin could print, and picks a credential for an image. More seeds
// live in testdata/fuzz/FuzzParseKubeletResponse.
func FuzzParseKubeletResponse(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","cacheDuration":"1h","auth":{"*.dkr.ecr.*.amazonaws.com":{"username":"AWS","password":"p"}}}`), "1.dkr.ecr.eu-west-1.amazonaws.com/app")
	f.Add([]byte(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderResponse","cacheKeyType":"Image"}`), "gcr.io/x")
	f.Add([]byte(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Global","cacheDuration":"0s","auth":{"gcr.io":{"username":"_token","password":"p"},"*":{"username":"x","password":"y"}}}`), "gcr.io/x")
	f.Fuzz(func(t *testing.T, b []byte, image string) {
		resp, err := cexec.ParseKubeletResponse(b, cexec.APIVersionV1)
		if err != nil {
			if !errors.Is(err, cexec.ErrBadOutput) {
				t.Fatalf("error %v does not wrap ErrBadOutput", err)
			}
			return
		}
		switch resp.Scope {
		case connectors.ScopeImage, connectors.ScopeRegistry, connectors.ScopeGlobal:
		default:
			t.Fatalf("scope %s", resp.Scope)
		}
		if resp.CacheDuration != nil && *resp.CacheDuration < 0 {
			t.Fatalf("negative cache duration %s", *resp.CacheDuration)
		}
		rid, err := resourceid.Parse(image)
		if err != nil {
			return
		}
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		cred, err := resp.Credentials(rid, now)
		if err != nil {
			if !errors.Is(err, cexec.ErrBadOutput) {
				t.Fatalf("error %v does not wrap ErrBadOutput", err)
			}
			return
		}
		// Whatever was picked came from a key that matches the image.
		found := false
		for k, a := range resp.Auth {
			if p, err := resourceid.ParsePattern(k); err == nil && p.Match(rid) && a.Username == cred.Username && a.Password == cred.Secret.Reveal() {
				found = true
			}
		}
		if !found {
			t.Fatalf("credential for %s came from no matching key", rid)
		}
		if cred.Scope != connectors.ScopeNone && resp.CacheDuration != nil && !cred.ExpiresAt.Equal(now.Add(*resp.CacheDuration)) {
			t.Fatalf("expiry %s for cache duration %s", cred.ExpiresAt, *resp.CacheDuration)
		}
	})
}
