package exec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// Kubelet credential provider API versions (k8s.io/kubelet
// pkg/apis/credentialprovider). The protocol is the same in all three;
// the version only has to round-trip.
const (
	APIVersionV1       = "credentialprovider.kubelet.k8s.io/v1"
	APIVersionV1beta1  = "credentialprovider.kubelet.k8s.io/v1beta1"
	APIVersionV1alpha1 = "credentialprovider.kubelet.k8s.io/v1alpha1"
)

// APIVersions are the versions a kubelet-plugin connector may speak.
var APIVersions = []string{APIVersionV1, APIVersionV1beta1, APIVersionV1alpha1}

// Kinds of the two messages.
const (
	kindRequest  = "CredentialProviderRequest"
	kindResponse = "CredentialProviderResponse"
)

// KubeletRequest is a CredentialProviderRequest.
type KubeletRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Image is the image being pulled; the daemon sends the repository it
	// was asked about ("host[:port]/path", or just the host when a client
	// asked for the whole registry).
	Image string `json:"image"`
}

// NewKubeletRequest encodes the request for rid.
func NewKubeletRequest(apiVersion string, rid resourceid.ID) ([]byte, error) {
	b, err := json.Marshal(KubeletRequest{APIVersion: apiVersion, Kind: kindRequest, Image: rid.String()})
	if err != nil {
		return nil, fmt.Errorf("encoding the kubelet request: %w", err)
	}
	return append(b, '\n'), nil
}

// KubeletAuth is one AuthConfig of a response. Password is a secret.
type KubeletAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// KubeletResponse is a decoded, validated CredentialProviderResponse.
type KubeletResponse struct {
	// Scope is cacheKeyType: Image, Registry or Global.
	Scope connectors.CacheScope
	// CacheDuration is nil when the plugin gave none (the connector's
	// expiration_seconds applies, as the kubelet's defaultCacheDuration);
	// zero means "do not cache".
	CacheDuration *time.Duration
	// Auth maps matchImages-style keys to credentials.
	Auth map[string]KubeletAuth
}

// kubeletWire is the response as sent.
type kubeletWire struct {
	APIVersion    string                 `json:"apiVersion"`
	Kind          string                 `json:"kind"`
	CacheKeyType  string                 `json:"cacheKeyType"`
	CacheDuration *string                `json:"cacheDuration"`
	Auth          map[string]KubeletAuth `json:"auth"`
}

// ParseKubeletResponse reads a plugin's stdout as the response to a
// request of apiVersion. Like the kubelet it refuses a response whose
// apiVersion differs from the request's, a kind other than
// CredentialProviderResponse, and a cacheKeyType other than Image,
// Registry or Global; cacheDuration is a Go duration ("12h", "5m0s").
// Errors wrap ErrBadOutput and never quote a credential.
func ParseKubeletResponse(b []byte, apiVersion string) (*KubeletResponse, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: the plugin printed nothing on stdout", ErrBadOutput)
	}
	var w kubeletWire
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: stdout is not a CredentialProviderResponse: %s", ErrBadOutput, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: stdout holds more than one JSON value", ErrBadOutput)
	}
	if w.APIVersion != apiVersion {
		return nil, fmt.Errorf("%w: the plugin answered apiVersion %.100q to a %s request; like the kubelet, connectord refuses a response in another version (set api_version to what the plugin speaks)",
			ErrBadOutput, w.APIVersion, apiVersion)
	}
	if w.Kind != kindResponse {
		return nil, fmt.Errorf("%w: kind %.100q, want %s", ErrBadOutput, w.Kind, kindResponse)
	}
	r := &KubeletResponse{Auth: w.Auth}
	switch w.CacheKeyType {
	case "Image":
		r.Scope = connectors.ScopeImage
	case "Registry":
		r.Scope = connectors.ScopeRegistry
	case "Global":
		r.Scope = connectors.ScopeGlobal
	default:
		return nil, fmt.Errorf("%w: cacheKeyType %.100q is not Image, Registry or Global", ErrBadOutput, w.CacheKeyType)
	}
	if w.CacheDuration != nil && *w.CacheDuration != "" {
		d, err := time.ParseDuration(*w.CacheDuration)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: cacheDuration %.100q is not a duration such as \"12h\"", ErrBadOutput, *w.CacheDuration)
		}
		r.CacheDuration = &d
	}
	return r, nil
}

// Credentials picks the credential for rid: among the auth keys that
// match it (kubelet matchImages semantics, resourceid.Pattern), the most
// specific (resourceid.ComparePatterns: fewest wildcards, then longest).
// The kubelet would try each match in turn until a pull succeeds; a
// credential helper returns one, so the best is taken. Keys that do not
// parse are skipped, as the kubelet skips them. now stamps cacheDuration.
// On an error the returned Credentials carry the chosen secret, if any,
// for redaction.
func (r *KubeletResponse) Credentials(rid resourceid.ID, now time.Time) (connectors.Credentials, error) {
	if len(r.Auth) == 0 {
		return connectors.Credentials{}, fmt.Errorf("%w: the plugin returned no credentials for %s", ErrBadOutput, rid)
	}
	var best resourceid.Pattern
	bestKey := ""
	for _, k := range slices.Sorted(maps.Keys(r.Auth)) {
		p, err := resourceid.ParsePattern(k)
		if err != nil || !p.Match(rid) {
			continue
		}
		if bestKey == "" || resourceid.ComparePatterns(p, best) < 0 {
			best, bestKey = p, k
		}
	}
	if bestKey == "" {
		keys := slices.Sorted(maps.Keys(r.Auth))
		if len(keys) > 10 {
			keys = append(keys[:10], "...")
		}
		return connectors.Credentials{}, fmt.Errorf("%w: none of the plugin's auth keys matches %s (keys: %s)", ErrBadOutput, rid, strings.Join(keys, ", "))
	}
	a := r.Auth[bestKey]
	cred := connectors.Credentials{Username: a.Username, Secret: secret.New(a.Password), Scope: r.Scope}
	if d := r.CacheDuration; d != nil {
		if *d == 0 {
			cred.Scope = connectors.ScopeNone
		} else {
			cred.ExpiresAt = now.Add(*d)
		}
	}
	return cred, nil
}
