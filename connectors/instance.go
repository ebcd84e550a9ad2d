package connectors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// Entry is one connector as written in the config file, before
// validation. Config holds raw TOML values.
type Entry struct {
	Name                 string
	Type                 string
	AuthMethod           string
	ResourceType         string
	ResourceID           string
	ExpiresAt            *time.Time
	ExpirationSeconds    *int64
	ExpiresSkewTolerance *int64
	Config               map[string]any
}

// DefaultSkewTolerance is ZenML's default: credentials this close to
// their expiry count as expired, so a client never starts a pull with a
// token that dies mid-way.
const DefaultSkewTolerance = 300 * time.Second

// ErrNotSupported is returned for an optional ability a type lacks.
var ErrNotSupported = errors.New("not supported by this connector type")

// Instance is a configured connector: ZenML's ServiceConnector.
type Instance struct {
	ID           uuid.UUID
	Name         string
	Type         string
	AuthMethod   string
	ResourceType string
	// ResourceID is canonical; RID is its parsed form (zero when the
	// connector is not bound to one resource, or bound to a glob).
	ResourceID string
	RID        resourceid.ID
	// Pattern is set when ResourceID is a glob ("*.azurecr.io"), for
	// resource types with SupportsGlobs; RID is then zero.
	Pattern resourceid.Pattern
	// ExpiresAt is when the configured credentials themselves expire (a
	// token pasted into the config); nil when they do not.
	ExpiresAt *time.Time
	// ExpirationSeconds is the lifetime to ask for when the auth method
	// issues temporary credentials; nil when not applicable.
	ExpirationSeconds *int64
	// ExpiresSkewTolerance overrides DefaultSkewTolerance, in seconds.
	ExpiresSkewTolerance *int64
	Config               Config

	spec *TypeSpec
	impl Connector
}

// NewInstance binds a validated instance to its implementation. Only the
// registry calls it, after validation.
func NewInstance(inst Instance, spec *TypeSpec, impl Connector) (*Instance, error) {
	i := inst
	i.spec = spec
	i.impl = impl
	if err := impl.Configure(&i); err != nil {
		return nil, err
	}
	return &i, nil
}

// ConfigID returns the stable id of a config-defined connector: derived
// from its name so it survives restarts and reloads, as ZenML's ids
// survive re-registration.
func ConfigID(name string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte("config/"+name))
}

// StoreID returns the stable id of a stored credential.
func StoreID(key string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte("store/"+key))
}

var namespace = uuid.MustParse("6f0f3b8e-8a53-4f1b-9f39-3c1f6a9b7e21")

// Format prints the instance's Info: the implementation behind it holds
// secrets in unexported fields.
func (i *Instance) Format(f fmt.State, verb rune) { secret.FormatRedacted(f, verb, i.Info()) }

// Spec returns the type's spec.
func (i *Instance) Spec() *TypeSpec { return i.spec }

// Impl returns the implementation, for optional interfaces.
func (i *Instance) Impl() Connector { return i.impl }

// SkewTolerance returns the skew for credentials of the given lifetime:
// the configured value, else the default capped at a quarter of the
// lifetime, so that a 60 s credential is not expired on arrival.
func (i *Instance) SkewTolerance(lifetime time.Duration) time.Duration {
	if i.ExpiresSkewTolerance != nil {
		return time.Duration(*i.ExpiresSkewTolerance) * time.Second
	}
	return SkewFor(lifetime)
}

// SkewFor is the default skew tolerance for a credential of the given
// lifetime (0 = unknown lifetime).
func SkewFor(lifetime time.Duration) time.Duration {
	if lifetime > 0 && DefaultSkewTolerance > lifetime/4 {
		return lifetime / 4
	}
	return DefaultSkewTolerance
}

// HasExpired reports whether the configured credentials have expired at
// now, counting the skew tolerance as ZenML does.
func (i *Instance) HasExpired(now time.Time) bool {
	if i.ExpiresAt == nil {
		return false
	}
	return !now.Before(i.ExpiresAt.Add(-i.SkewTolerance(0)))
}

// Covers reports whether the instance serves rid: its resource id covers
// rid (same registry, path prefix), or its glob matches rid.
func (i *Instance) Covers(rid resourceid.ID) bool {
	if i.Pattern.IsGlob() {
		return i.Pattern.Match(rid)
	}
	return i.RID.Covers(rid)
}

// IsGlob reports whether the instance serves a glob of registries.
func (i *Instance) IsGlob() bool { return i.Pattern.IsGlob() }

// Expiring reports whether the instance issues expiring credentials: its
// auth method declares expiration bounds. The daemon caches and refreshes
// those in the background; the others it asks on every get.
func (i *Instance) Expiring() bool {
	if i.spec == nil {
		return false
	}
	am, ok := i.spec.AuthMethod(i.AuthMethod)
	return ok && am.Expiration != nil
}

// Lifetime is the lifetime of a credential whose source states no expiry:
// expiration_seconds (validated against the auth method's bounds, or its
// default). Zero for instances that do not expire.
func (i *Instance) Lifetime() time.Duration {
	if i.ExpirationSeconds == nil {
		return 0
	}
	return time.Duration(*i.ExpirationSeconds) * time.Second
}

// FetchScope is the scope concurrent fetches are shared at: what the
// implementation declares (Scoper), else ScopeImage.
func (i *Instance) FetchScope() CacheScope {
	if s, ok := i.impl.(Scoper); ok {
		return s.CacheScope()
	}
	return ScopeImage
}

// Credentials returns credentials for rid, refusing expired ones.
func (i *Instance) Credentials(ctx context.Context, rid resourceid.ID) (Credentials, error) {
	if i.HasExpired(time.Now()) {
		return Credentials{}, fmt.Errorf("connector %q: configured credentials expired at %s", i.Name, i.ExpiresAt.Format(time.RFC3339))
	}
	c, err := i.impl.Credentials(ctx, rid)
	if err != nil {
		return Credentials{}, fmt.Errorf("connector %q: %w", i.Name, err)
	}
	return c, nil
}

// Verify authenticates against the resource for real and lists what the
// connector reaches.
func (i *Instance) Verify(ctx context.Context, rid resourceid.ID) (*Resources, error) {
	v, ok := i.impl.(Verifier)
	if !ok {
		return nil, fmt.Errorf("connector %q: verify: %w", i.Name, ErrNotSupported)
	}
	r, err := v.Verify(ctx, rid)
	if err != nil {
		return nil, fmt.Errorf("connector %q: %w", i.Name, err)
	}
	return r, nil
}

// SameDefinition reports whether two instances were built from the same
// definition, so reload can keep the running one and its cache.
func (i *Instance) SameDefinition(o *Instance) bool {
	eqTime := func(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }
	eqInt := func(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return i.Name == o.Name && i.Type == o.Type && i.AuthMethod == o.AuthMethod &&
		i.ResourceType == o.ResourceType && i.ResourceID == o.ResourceID &&
		eqTime(i.ExpiresAt, o.ExpiresAt) && eqInt(i.ExpirationSeconds, o.ExpirationSeconds) &&
		eqInt(i.ExpiresSkewTolerance, o.ExpiresSkewTolerance) && i.Config.Equal(o.Config)
}

// Info is the printable view of an instance: what list and describe show.
// It holds no secret.
type Info struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	Type                 string         `json:"type"`
	AuthMethod           string         `json:"auth_method"`
	ResourceType         string         `json:"resource_type"`
	ResourceID           string         `json:"resource_id"`
	ExpiresAt            *time.Time     `json:"expires_at"`
	ExpirationSeconds    *int64         `json:"expiration_seconds,omitempty"`
	ExpiresSkewTolerance *int64         `json:"expires_skew_tolerance,omitempty"`
	Config               map[string]any `json:"config,omitempty"`
	Origin               string         `json:"origin"`

	// The refresh state of an expiring connector (null or absent for the
	// others). ExpiresAt above is then the current credential's expiry.
	// LastRefresh is the last successful fetch; NextRefresh the next
	// scheduled one (a renewal or a retry); LastError and LastErrorAt the
	// last failed fetch, kept after a later success; Attempts the failed
	// fetches since the last success.
	LastRefresh *time.Time `json:"last_refresh"`
	NextRefresh *time.Time `json:"next_refresh"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	Attempts    int        `json:"attempts,omitempty"`
}

// Info returns the instance's printable view with secrets redacted.
func (i *Instance) Info() Info {
	return Info{
		ID: i.ID.String(), Name: i.Name, Type: i.Type, AuthMethod: i.AuthMethod,
		ResourceType: i.ResourceType, ResourceID: i.ResourceID, ExpiresAt: i.ExpiresAt,
		ExpirationSeconds: i.ExpirationSeconds, ExpiresSkewTolerance: i.ExpiresSkewTolerance,
		Config: i.Config.Redacted(), Origin: "config",
	}
}
