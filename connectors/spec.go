// Package connectors is connectord's model of service connectors, after
// ZenML's: a connector type declares what it can authenticate with (auth
// methods, each with a config schema whose secret fields are marked and
// expiration bounds), what it gives access to (resource types, and whether
// resources have IDs such as a registry host) and whether it can configure
// itself from the machine. A configured connector is an Instance. Concrete
// types live in sub-packages (connectors/docker, ...) and register
// themselves with the registry package.
package connectors

import (
	"context"
	"fmt"
	"time"

	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// ResourceTypeDockerRegistry is the resource type every docker credential
// is for. Its resource IDs are registry hosts, optionally with a
// repository path (see package resourceid).
const ResourceTypeDockerRegistry = "docker-registry"

// FieldType is the type of a config field's value.
type FieldType string

// Field types a schema can declare. TOML values are checked against them
// before a connector ever sees its config.
const (
	FieldString     FieldType = "string"
	FieldInt        FieldType = "int"
	FieldBool       FieldType = "bool"
	FieldDuration   FieldType = "duration" // a Go duration string such as "30s"
	FieldStringList FieldType = "[]string"
	FieldStringMap  FieldType = "map[string]string"
)

// FieldSpec describes one config field of an auth method.
type FieldSpec struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Type        FieldType `json:"type"`
	Required    bool      `json:"required"`
	// Default applies when the field is absent; it must have the Go type
	// the field decodes to (string, int64, bool, time.Duration, []string,
	// map[string]string).
	Default any `json:"default,omitempty"`
	// Secret fields are held as secret.Value and never printed.
	Secret bool `json:"secret"`
}

// ExpirationBounds limits expiration_seconds for an auth method that
// issues temporary credentials.
type ExpirationBounds struct {
	Min     int `json:"min_seconds"`
	Max     int `json:"max_seconds"`
	Default int `json:"default_seconds"`
}

// AuthMethodSpec is one way a connector type can authenticate.
type AuthMethodSpec struct {
	ID          string      `json:"auth_method"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Fields      []FieldSpec `json:"config_schema"`
	// Expiration is nil for methods whose credentials do not expire.
	Expiration *ExpirationBounds `json:"expiration,omitempty"`
}

// Field returns the named field's spec.
func (a *AuthMethodSpec) Field(name string) (FieldSpec, bool) {
	for _, f := range a.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return FieldSpec{}, false
}

// ResourceTypeSpec is a kind of resource a connector type gives access to.
type ResourceTypeSpec struct {
	ID          string `json:"resource_type"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// AuthMethods lists the auth method IDs that serve this resource type.
	AuthMethods []string `json:"auth_methods"`
	// SupportsInstances: resources of this type have IDs (a registry host),
	// so a connector may be bound to one of them.
	SupportsInstances bool `json:"supports_instances"`
	// SupportsGlobs: a connector's resource id may be a pattern with the
	// kubelet's matchImages semantics ("*.dkr.ecr.*.amazonaws.com", see
	// resourceid.Pattern), for types whose credentials come from a source
	// that knows which registry it is asked about. Requires
	// SupportsInstances.
	SupportsGlobs bool `json:"supports_globs"`
}

// TypeSpec is a connector type's declaration.
type TypeSpec struct {
	Type                      string             `json:"connector_type"`
	Name                      string             `json:"name"`
	Description               string             `json:"description"`
	AuthMethods               []AuthMethodSpec   `json:"auth_methods"`
	ResourceTypes             []ResourceTypeSpec `json:"resource_types"`
	SupportsAutoConfiguration bool               `json:"supports_auto_configuration"`
}

// AuthMethod returns the named auth method's spec.
func (s *TypeSpec) AuthMethod(id string) (*AuthMethodSpec, bool) {
	for i := range s.AuthMethods {
		if s.AuthMethods[i].ID == id {
			return &s.AuthMethods[i], true
		}
	}
	return nil, false
}

// ResourceType returns the named resource type's spec.
func (s *TypeSpec) ResourceType(id string) (*ResourceTypeSpec, bool) {
	for i := range s.ResourceTypes {
		if s.ResourceTypes[i].ID == id {
			return &s.ResourceTypes[i], true
		}
	}
	return nil, false
}

// Validate checks the spec's internal consistency. The registry refuses
// a type whose spec does not validate, so a broken type fails at start-up
// rather than when a user first configures it.
func (s *TypeSpec) Validate() error {
	if s.Type == "" {
		return fmt.Errorf("connector type spec: empty type id")
	}
	if len(s.AuthMethods) == 0 || len(s.ResourceTypes) == 0 {
		return fmt.Errorf("connector type %q: needs at least one auth method and one resource type", s.Type)
	}
	seen := map[string]bool{}
	for _, am := range s.AuthMethods {
		if am.ID == "" || seen[am.ID] {
			return fmt.Errorf("connector type %q: empty or duplicate auth method %q", s.Type, am.ID)
		}
		seen[am.ID] = true
		fields := map[string]bool{}
		for _, f := range am.Fields {
			if f.Name == "" || fields[f.Name] {
				return fmt.Errorf("connector type %q auth method %q: empty or duplicate field %q", s.Type, am.ID, f.Name)
			}
			fields[f.Name] = true
			if f.Secret && f.Type != FieldString {
				return fmt.Errorf("connector type %q auth method %q: secret field %q must be a string", s.Type, am.ID, f.Name)
			}
		}
		if e := am.Expiration; e != nil && (e.Min <= 0 || e.Min > e.Default || e.Default > e.Max) {
			return fmt.Errorf("connector type %q auth method %q: expiration bounds need 0 < min <= default <= max", s.Type, am.ID)
		}
	}
	for _, rt := range s.ResourceTypes {
		if rt.SupportsGlobs && !rt.SupportsInstances {
			return fmt.Errorf("connector type %q resource type %q: globs need resource ids (supports_instances)", s.Type, rt.ID)
		}
		for _, am := range rt.AuthMethods {
			if !seen[am] {
				return fmt.Errorf("connector type %q resource type %q: unknown auth method %q", s.Type, rt.ID, am)
			}
		}
	}
	return nil
}

// CacheScope says which requests may share a credential an expiring
// connector issued: the kubelet credential provider's cacheKeyType, plus a
// value for credentials that must not be reused at all.
type CacheScope uint8

// Cache scopes. The zero value is ScopeRegistry, the way docker keys
// credentials (one per registry host).
const (
	// ScopeRegistry: every repository of the registry (host[:port]).
	ScopeRegistry CacheScope = iota
	// ScopeImage: the one repository asked about (kubelet "Image").
	ScopeImage
	// ScopeGlobal: everything the connector serves (kubelet "Global").
	ScopeGlobal
	// ScopeNone: hand the credential to the gets that asked and forget it
	// (a kubelet plugin's cacheDuration of 0).
	ScopeNone
)

func (s CacheScope) String() string {
	switch s {
	case ScopeRegistry:
		return "registry"
	case ScopeImage:
		return "image"
	case ScopeGlobal:
		return "global"
	case ScopeNone:
		return "none"
	default:
		return fmt.Sprintf("CacheScope(%d)", uint8(s))
	}
}

// CacheKey returns the part of a cache key that scope s takes from rid:
// the repository for ScopeImage, the registry for ScopeRegistry, nothing
// for ScopeGlobal. The prefix keeps the scopes apart.
func CacheKey(s CacheScope, rid resourceid.ID) string {
	switch s {
	case ScopeImage:
		return "image " + rid.String()
	case ScopeGlobal:
		return "global"
	default:
		return "registry " + rid.Host
	}
}

// Credentials is what a connector hands a docker client.
type Credentials struct {
	Username string
	// Secret is a password, a registry token, or an identity token when
	// Username is "<token>".
	Secret secret.Value
	// ExpiresAt is zero for credentials that do not expire. An expiring
	// connector may leave it zero when its source states no expiry; the
	// daemon then applies the connector's expiration_seconds.
	ExpiresAt time.Time
	// Scope says which requests may share this credential; it matters
	// only for expiring connectors, whose credentials the daemon caches.
	Scope CacheScope
}

// Format masks the username too: ZenML's docker connector treats it as
// secret, and a log line has no need for it.
func (c Credentials) Format(f fmt.State, verb rune) {
	view := struct {
		Username  string
		Secret    secret.Value
		ExpiresAt time.Time
	}{secret.New(c.Username).String(), c.Secret, c.ExpiresAt}
	secret.FormatRedacted(f, verb, view)
}

// Connector is what a connector type implements. The registry calls New
// (an empty value, no side effects), then Configure with the validated
// instance; the daemon then asks for credentials.
type Connector interface {
	// Configure receives the instance after its config passed the schema.
	// It may check semantics the schema cannot express, but must not
	// contact anything: validation has to be cheap and offline.
	Configure(inst *Instance) error
	// Credentials returns credentials for a resource this connector covers.
	Credentials(ctx context.Context, rid resourceid.ID) (Credentials, error)
}

// Scoper is implemented by expiring connectors that know, before they
// fetch, the scope their credentials will have. Concurrent gets that would
// share the credential then share one fetch too: a docker credential
// helper answers per registry, so gets for two repositories of one
// registry start one process, not two. Without it the daemon assumes
// ScopeImage, the narrowest.
type Scoper interface {
	CacheScope() CacheScope
}

// Verifier is implemented by connectors that can check their credentials
// against the real service and list what they reach (ZenML's verify and
// list-resources).
type Verifier interface {
	Verify(ctx context.Context, rid resourceid.ID) (*Resources, error)
}

// Resources is the result of a verification.
type Resources struct {
	ResourceType string   `json:"resource_type"`
	ResourceID   string   `json:"resource_id"`
	Repositories []string `json:"repositories,omitempty"`
	// Note explains a partial answer, e.g. a registry that hides its catalog.
	Note string `json:"note,omitempty"`
	// Endpoint is where the service was reached ("https://host:port"),
	// and Auth how it authenticated ("basic", "bearer", "none"), when the
	// type knows.
	Endpoint string `json:"endpoint,omitempty"`
	Auth     string `json:"auth,omitempty"`
}
