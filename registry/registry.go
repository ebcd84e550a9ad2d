// Package registry is connectord's registry of connector types (never a
// container registry). Connector packages register their type from init
// into Default; the daemon and the CLI look types up, list them with
// ZenML's filters and instantiate validated connectors from config
// entries. A Registry is a value, so tests build their own with New.
package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/resourceid"
)

// Type is a registered connector type: its spec and a constructor that
// returns an empty, side-effect-free value (caddy's module rule).
type Type struct {
	Spec connectors.TypeSpec
	New  func() connectors.Connector
}

// Registry maps connector type ids to types. Safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]Type
}

// New returns an empty registry.
func New() *Registry { return &Registry{types: map[string]Type{}} }

// Default is the registry that connector packages fill from init.
var Default = New()

// ErrDuplicate is returned when a type id is registered twice.
var ErrDuplicate = errors.New("connector type already registered")

// Register adds a type. It refuses an empty id, a nil constructor, an
// inconsistent spec and a duplicate.
func (r *Registry) Register(t Type) error {
	if t.New == nil {
		return fmt.Errorf("register connector type %q: nil constructor", t.Spec.Type)
	}
	if err := t.Spec.Validate(); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.types[t.Spec.Type]; ok {
		return fmt.Errorf("register %q: %w", t.Spec.Type, ErrDuplicate)
	}
	r.types[t.Spec.Type] = t
	return nil
}

// MustRegister is Register for init functions: a bad registration is a
// programming error and must stop the binary at start-up.
func (r *Registry) MustRegister(t Type) {
	if err := r.Register(t); err != nil {
		panic(err)
	}
}

// Lookup returns the type registered under id.
func (r *Registry) Lookup(id string) (Type, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.types[id]
	return t, ok
}

// Filter narrows List; empty fields match everything.
type Filter struct {
	Type         string
	ResourceType string
	AuthMethod   string
}

// List returns the specs matching f, sorted by type id.
func (r *Registry) List(f Filter) []connectors.TypeSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []connectors.TypeSpec
	for _, id := range slices.Sorted(maps.Keys(r.types)) {
		s := r.types[id].Spec
		if f.Type != "" && s.Type != f.Type {
			continue
		}
		if _, ok := s.ResourceType(f.ResourceType); f.ResourceType != "" && !ok {
			continue
		}
		if _, ok := s.AuthMethod(f.AuthMethod); f.AuthMethod != "" && !ok {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Instantiate validates e against its type's spec and returns a
// configured instance. It contacts nothing. A *connectors.ValidationError
// lists every problem found.
func (r *Registry) Instantiate(e connectors.Entry, res connectors.Resolver) (*connectors.Instance, error) {
	verr := &connectors.ValidationError{Connector: e.Name}
	bad := func(field, format string, args ...any) {
		verr.Problems = append(verr.Problems, connectors.Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if e.Name == "" {
		bad("name", "required field is missing")
	}
	t, ok := r.Lookup(e.Type)
	if !ok {
		known := slices.Sorted(maps.Keys(r.snapshot()))
		if e.Type == "" {
			bad("type", "required field is missing (known types: %v)", known)
		} else {
			bad("type", "unknown connector type %q (known types: %v)", e.Type, known)
		}
		verr.MarkUnknownType()
		return nil, verr
	}
	spec := t.Spec
	inst := connectors.Instance{
		ID: connectors.ConfigID(e.Name), Name: e.Name, Type: e.Type,
		AuthMethod: e.AuthMethod, ResourceType: e.ResourceType,
		ExpiresAt: e.ExpiresAt, ExpirationSeconds: e.ExpirationSeconds,
		ExpiresSkewTolerance: e.ExpiresSkewTolerance,
	}

	// With one choice, leaving it out is unambiguous (the shape
	// allows it for resource_type; auth_method gets the same courtesy).
	if inst.ResourceType == "" && len(spec.ResourceTypes) == 1 {
		inst.ResourceType = spec.ResourceTypes[0].ID
	}
	if inst.AuthMethod == "" && len(spec.AuthMethods) == 1 {
		inst.AuthMethod = spec.AuthMethods[0].ID
	}
	am, amOK := spec.AuthMethod(inst.AuthMethod)
	switch {
	case inst.AuthMethod == "":
		bad("auth_method", "required field is missing (type %q offers %v)", spec.Type, authIDs(&spec))
	case !amOK:
		bad("auth_method", "type %q has no auth method %q (it offers %v)", spec.Type, inst.AuthMethod, authIDs(&spec))
	}
	rt, rtOK := spec.ResourceType(inst.ResourceType)
	switch {
	case inst.ResourceType == "":
		bad("resource_type", "required field is missing (type %q serves %v)", spec.Type, resourceIDs(&spec))
	case !rtOK:
		bad("resource_type", "type %q does not serve resource type %q (it serves %v)", spec.Type, inst.ResourceType, resourceIDs(&spec))
	case amOK && !slices.Contains(rt.AuthMethods, am.ID):
		bad("auth_method", "auth method %q cannot serve resource type %q", am.ID, rt.ID)
	}
	if rtOK {
		switch {
		case e.ResourceID == "" && rt.SupportsInstances:
			bad("resource_id", "required for resource type %q (a registry such as \"registry.example.com:5000\")", rt.ID)
		case e.ResourceID != "" && !rt.SupportsInstances:
			bad("resource_id", "resource type %q has no resource ids", rt.ID)
		case e.ResourceID != "":
			if err := canonicalise(&inst, rt, e.ResourceID); err != nil {
				bad("resource_id", "%v", err)
			}
		}
	}
	if amOK {
		checkExpiry(am, &inst, bad)
		cfg, probs := connectors.DecodeConfig(am, e.Config, res)
		verr.Problems = append(verr.Problems, probs...)
		inst.Config = cfg
	} else if len(e.Config) > 0 {
		bad("config", "cannot be checked without a valid auth_method")
	}
	if len(verr.Problems) > 0 {
		return nil, verr
	}
	out, err := connectors.NewInstance(inst, &spec, t.New())
	if err != nil {
		var ve *connectors.ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		bad("", "%v", err)
		return nil, verr
	}
	return out, nil
}

func canonicalise(inst *connectors.Instance, rt *connectors.ResourceTypeSpec, raw string) error {
	if inst.ResourceType != connectors.ResourceTypeDockerRegistry {
		inst.ResourceID = raw
		return nil
	}
	if strings.Contains(raw, "*") {
		if !rt.SupportsGlobs {
			return fmt.Errorf("resource type %q of this connector type takes one registry, not a glob (%q)", rt.ID, raw)
		}
		p, err := resourceid.ParsePattern(raw)
		if err != nil {
			return err
		}
		inst.Pattern = p
		inst.ResourceID = p.String()
		return nil
	}
	rid, err := resourceid.Parse(raw)
	if err != nil {
		return err
	}
	inst.RID = rid
	inst.ResourceID = rid.String()
	return nil
}

func checkExpiry(am *connectors.AuthMethodSpec, inst *connectors.Instance, bad func(string, string, ...any)) {
	b := am.Expiration
	if inst.ExpirationSeconds != nil {
		switch n := *inst.ExpirationSeconds; {
		case b == nil:
			bad("expiration_seconds", "auth method %q issues credentials that do not expire", am.ID)
		case n < int64(b.Min) || n > int64(b.Max):
			bad("expiration_seconds", "%d is outside %d..%d for auth method %q", n, b.Min, b.Max, am.ID)
		}
	} else if b != nil {
		d := int64(b.Default)
		inst.ExpirationSeconds = &d
	}
	if s := inst.ExpiresSkewTolerance; s != nil && *s < 0 {
		bad("expires_skew_tolerance", "must not be negative")
	} else if s != nil && b != nil && inst.ExpirationSeconds != nil && *s >= *inst.ExpirationSeconds {
		// Every credential would count as expired the moment it arrived.
		bad("expires_skew_tolerance", "%d must be less than expiration_seconds (%d), or every credential is expired on arrival", *s, *inst.ExpirationSeconds)
	}
}

func (r *Registry) snapshot() map[string]Type {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.types)
}

func authIDs(s *connectors.TypeSpec) []string {
	var out []string
	for _, a := range s.AuthMethods {
		out = append(out, a.ID)
	}
	return out
}

func resourceIDs(s *connectors.TypeSpec) []string {
	var out []string
	for _, r := range s.ResourceTypes {
		out = append(out, r.ID)
	}
	return out
}
