package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
)

// fake is a connector type used to exercise the registry without any
// real type's behaviour.
type fake struct{ inst *connectors.Instance }

func (f *fake) Configure(inst *connectors.Instance) error { f.inst = inst; return nil }
func (f *fake) Credentials(context.Context, resourceid.ID) (connectors.Credentials, error) {
	return connectors.Credentials{Username: "u"}, nil
}

func spec(id string, auth ...string) connectors.TypeSpec {
	s := connectors.TypeSpec{Type: id, Name: id}
	for _, a := range auth {
		s.AuthMethods = append(s.AuthMethods, connectors.AuthMethodSpec{ID: a, Fields: []connectors.FieldSpec{
			{Name: "token", Type: connectors.FieldString, Required: true, Secret: true},
			{Name: "timeout", Type: connectors.FieldDuration, Default: nil},
			{Name: "retries", Type: connectors.FieldInt},
			{Name: "args", Type: connectors.FieldStringList},
		}})
	}
	s.ResourceTypes = []connectors.ResourceTypeSpec{{ID: connectors.ResourceTypeDockerRegistry, AuthMethods: auth, SupportsInstances: true}}
	return s
}

func newFake() connectors.Connector { return &fake{} }

func TestRegisterRefusesBadTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  registry.Type
		want string
	}{
		{"empty id", registry.Type{Spec: spec("", "a"), New: newFake}, "empty type id"},
		{"nil constructor", registry.Type{Spec: spec("x", "a")}, "nil constructor"},
		{"no auth methods", registry.Type{Spec: connectors.TypeSpec{Type: "x", ResourceTypes: []connectors.ResourceTypeSpec{{ID: "r"}}}, New: newFake}, "at least one auth method"},
		{"resource type names unknown auth", registry.Type{Spec: func() connectors.TypeSpec {
			s := spec("x", "a")
			s.ResourceTypes[0].AuthMethods = []string{"nope"}
			return s
		}(), New: newFake}, `unknown auth method "nope"`},
		{"bad expiration bounds", registry.Type{Spec: func() connectors.TypeSpec {
			s := spec("x", "a")
			s.AuthMethods[0].Expiration = &connectors.ExpirationBounds{Min: 100, Default: 50, Max: 200}
			return s
		}(), New: newFake}, "expiration bounds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := registry.New().Register(tc.typ)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Register() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestRegisterDuplicate(t *testing.T) {
	t.Parallel()
	r := registry.New()
	if err := r.Register(registry.Type{Spec: spec("x", "a"), New: newFake}); err != nil {
		t.Fatal(err)
	}
	err := r.Register(registry.Type{Spec: spec("x", "b"), New: newFake})
	if !errors.Is(err, registry.ErrDuplicate) {
		t.Fatalf("second Register = %v, want ErrDuplicate", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustRegister of a duplicate did not panic")
		}
	}()
	r.MustRegister(registry.Type{Spec: spec("x", "a"), New: newFake})
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	r := registry.New()
	r.MustRegister(registry.Type{Spec: spec("beta", "password"), New: newFake})
	r.MustRegister(registry.Type{Spec: spec("alpha", "token", "password"), New: newFake})
	other := spec("gamma", "token")
	other.ResourceTypes[0].ID = "kubernetes-cluster"
	r.MustRegister(registry.Type{Spec: other, New: newFake})
	tests := []struct {
		name   string
		filter registry.Filter
		want   string
	}{
		{"all, sorted", registry.Filter{}, "alpha,beta,gamma"},
		{"by type", registry.Filter{Type: "beta"}, "beta"},
		{"by resource type", registry.Filter{ResourceType: connectors.ResourceTypeDockerRegistry}, "alpha,beta"},
		{"by auth method", registry.Filter{AuthMethod: "token"}, "alpha,gamma"},
		{"combined", registry.Filter{AuthMethod: "token", ResourceType: "kubernetes-cluster"}, "gamma"},
		{"no match", registry.Filter{Type: "nope"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ids []string
			for _, s := range r.List(tc.filter) {
				ids = append(ids, s.Type)
			}
			if got := strings.Join(ids, ","); got != tc.want {
				t.Fatalf("List(%+v) = %q, want %q", tc.filter, got, tc.want)
			}
		})
	}
}

type mapResolver map[string]string

func (m mapResolver) LookupEnv(k string) (string, bool) { v, ok := m["env:"+k]; return v, ok }
func (m mapResolver) ReadFile(p string) ([]byte, error) {
	v, ok := m["file:"+p]
	if !ok {
		return nil, errors.New("no such file")
	}
	return []byte(v), nil
}

func TestInstantiate(t *testing.T) {
	t.Parallel()
	r := registry.New()
	s := spec("fake", "token")
	s.AuthMethods[0].Expiration = &connectors.ExpirationBounds{Min: 60, Default: 3600, Max: 43200}
	r.MustRegister(registry.Type{Spec: s, New: newFake})
	res := mapResolver{"env:TOK": "from-env", "file:/tok": "from-file\n"}
	n := func(v int64) *int64 { return &v }
	tests := []struct {
		name  string
		entry connectors.Entry
		want  []string // substrings of the error; none = success
		check func(t *testing.T, inst *connectors.Instance)
	}{
		{name: "minimal, defaults filled", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "HOST:5000", Config: map[string]any{"token": "t"}},
			check: func(t *testing.T, inst *connectors.Instance) {
				if inst.AuthMethod != "token" || inst.ResourceType != connectors.ResourceTypeDockerRegistry || inst.ResourceID != "host:5000" {
					t.Errorf("defaults/canonical: %+v", inst.Info())
				}
				if inst.ExpirationSeconds == nil || *inst.ExpirationSeconds != 3600 {
					t.Errorf("expiration default not applied: %v", inst.ExpirationSeconds)
				}
				if inst.Config.Secret("token").Reveal() != "t" {
					t.Error("secret not decoded")
				}
				if inst.ID != connectors.ConfigID("a") {
					t.Error("id not stable")
				}
			}},
		{name: "env and file refs", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h", Config: map[string]any{"token": map[string]any{"file": "/tok"}, "args": []any{"x"}}},
			check: func(t *testing.T, inst *connectors.Instance) {
				if got := inst.Config.Secret("token").Reveal(); got != "from-file" {
					t.Errorf("file secret = %q", got)
				}
				if got := inst.Config.Source("token"); got != "file:/tok" {
					t.Errorf("source = %q", got)
				}
			}},
		{name: "unknown type", entry: connectors.Entry{Name: "a", Type: "dockr"}, want: []string{`unknown connector type "dockr"`, "known types: [fake]"}},
		{name: "every problem at once", entry: connectors.Entry{Name: "a", Type: "fake", AuthMethod: "password", ResourceID: "ftp://x",
			Config: map[string]any{"tokn": "t"}},
			want: []string{`auth_method: type "fake" has no auth method "password"`, "resource_id:", "config: cannot be checked"}},
		{name: "schema problems", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h",
			Config: map[string]any{"tokn": "t", "retries": "three", "timeout": "soon", "args": []any{int64(1)}}},
			want: []string{"config.tokn: unknown field", "config.token: required field is missing", "config.retries: must be an integer, got a string",
				`config.timeout: must be a positive duration such as "30s", got "soon"`, "config.args: element 0 must be a string"}},
		{name: "missing env var", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h", Config: map[string]any{"token": map[string]any{"env": "NOPE"}}},
			want: []string{"environment variable NOPE is not set"}},
		{name: "bad ref table", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h", Config: map[string]any{"token": map[string]any{"vault": "x"}}},
			want: []string{`{ env = "VAR" } or { file = "/path" }`}},
		{name: "missing resource id", entry: connectors.Entry{Name: "a", Type: "fake", Config: map[string]any{"token": "t"}}, want: []string{"resource_id: required"}},
		{name: "expiration out of bounds", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h", ExpirationSeconds: n(10), Config: map[string]any{"token": "t"}},
			want: []string{"expiration_seconds: 10 is outside 60..43200"}},
		{name: "negative skew", entry: connectors.Entry{Name: "a", Type: "fake", ResourceID: "h", ExpiresSkewTolerance: n(-1), Config: map[string]any{"token": "t"}},
			want: []string{"expires_skew_tolerance: must not be negative"}},
		{name: "no name", entry: connectors.Entry{Type: "fake", ResourceID: "h", Config: map[string]any{"token": "t"}}, want: []string{"name: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inst, err := r.Instantiate(tc.entry, res)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Instantiate: %v", err)
				}
				tc.check(t, inst)
				return
			}
			var ve *connectors.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Instantiate = %v, want a *ValidationError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "from-env") || strings.Contains(err.Error(), "from-file") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
	_, err := r.Instantiate(connectors.Entry{Name: "a", Type: "nope"}, res)
	if !errors.Is(err, connectors.ErrUnknownType) {
		t.Errorf("unknown type: errors.Is(ErrUnknownType) false for %v", err)
	}
}

func TestInstantiateGlobs(t *testing.T) {
	t.Parallel()
	r := registry.New()
	globs := spec("globby", "token")
	globs.ResourceTypes[0].SupportsGlobs = true
	globs.AuthMethods[0].Expiration = &connectors.ExpirationBounds{Min: 10, Default: 3600, Max: 43200}
	r.MustRegister(registry.Type{Spec: globs, New: newFake})
	r.MustRegister(registry.Type{Spec: spec("plain", "token"), New: newFake})
	n := func(v int64) *int64 { return &v }
	cfg := map[string]any{"token": "t"}
	tests := []struct {
		name  string
		entry connectors.Entry
		want  string // error substring; "" = success
		id    string // canonical resource id on success
		glob  bool
	}{
		{"glob", connectors.Entry{Name: "a", Type: "globby", ResourceID: "*.DKR.ecr.*.amazonaws.com", Config: cfg}, "", "*.dkr.ecr.*.amazonaws.com", true},
		{"glob with path", connectors.Entry{Name: "a", Type: "globby", ResourceID: "*.example.com:5000/Team", Config: cfg}, "", "*.example.com:5000/team", true},
		{"exact host on a glob type", connectors.Entry{Name: "a", Type: "globby", ResourceID: "HOST:5000", Config: cfg}, "", "host:5000", false},
		{"glob refused by a plain type", connectors.Entry{Name: "a", Type: "plain", ResourceID: "*.example.com", Config: cfg}, "takes one registry, not a glob", "", false},
		{"bad glob", connectors.Entry{Name: "a", Type: "globby", ResourceID: "example.com/*", Config: cfg}, "host only", "", false},
		{"skew as long as the lifetime", connectors.Entry{Name: "a", Type: "globby", ResourceID: "h", ExpirationSeconds: n(60), ExpiresSkewTolerance: n(60), Config: cfg},
			"expires_skew_tolerance: 60 must be less than expiration_seconds (60)", "", false},
		{"skew below the lifetime", connectors.Entry{Name: "a", Type: "globby", ResourceID: "h", ExpirationSeconds: n(60), ExpiresSkewTolerance: n(10), Config: cfg}, "", "h", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inst, err := r.Instantiate(tc.entry, connectors.OSResolver{})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Instantiate = %v, want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inst.ResourceID != tc.id || inst.IsGlob() != tc.glob || inst.Pattern.IsGlob() != tc.glob || (tc.glob && inst.RID != (resourceid.ID{})) {
				t.Fatalf("instance: id %q glob %v RID %+v; want %q glob %v", inst.ResourceID, inst.IsGlob(), inst.RID, tc.id, tc.glob)
			}
		})
	}
	inst, err := r.Instantiate(connectors.Entry{Name: "a", Type: "globby", ResourceID: "*.dkr.ecr.*.amazonaws.com", Config: cfg}, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	if !inst.Covers(resourceid.MustParse("1234.dkr.ecr.eu-west-1.amazonaws.com/app")) || inst.Covers(resourceid.MustParse("ecr.example.com")) {
		t.Error("Covers does not follow the glob")
	}
	if !inst.Expiring() || inst.Lifetime().Seconds() != 3600 {
		t.Errorf("Expiring() = %v, Lifetime() = %s", inst.Expiring(), inst.Lifetime())
	}
}

func TestGlobsNeedInstances(t *testing.T) {
	t.Parallel()
	s := spec("x", "a")
	s.ResourceTypes[0].SupportsInstances = false
	s.ResourceTypes[0].SupportsGlobs = true
	if err := registry.New().Register(registry.Type{Spec: s, New: newFake}); err == nil || !strings.Contains(err.Error(), "globs need resource ids") {
		t.Fatalf("Register = %v", err)
	}
}
