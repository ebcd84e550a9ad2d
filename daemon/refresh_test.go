package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
	"github.com/connectord/connectord/store"
)

// issuer is an expiring connector type for tests: each fetch mints a new
// user valid for the connector's expiration_seconds. Calls are counted per
// connector name.
type issuer struct {
	mu    sync.Mutex
	calls map[string]int
	fail  map[string]error
}

func (is *issuer) count(name string) int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.calls[name]
}

func (is *issuer) setFail(name string, err error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.fail[name] = err
}

type issued struct {
	is   *issuer
	inst *connectors.Instance
}

func (c *issued) Configure(inst *connectors.Instance) error { c.inst = inst; return nil }

func (c *issued) CacheScope() connectors.CacheScope { return connectors.ScopeRegistry }

func (c *issued) Credentials(_ context.Context, rid resourceid.ID) (connectors.Credentials, error) {
	c.is.mu.Lock()
	defer c.is.mu.Unlock()
	c.is.calls[c.inst.Name]++
	if err := c.is.fail[c.inst.Name]; err != nil {
		return connectors.Credentials{}, err
	}
	// No ExpiresAt: the daemon applies expiration_seconds.
	return connectors.Credentials{Username: fmt.Sprintf("%s-%d", c.inst.Name, c.is.calls[c.inst.Name]), Secret: secret.New("minted-SECRET")}, nil
}

// plain is a non-expiring type that accepts globs.
type plain struct{ inst *connectors.Instance }

func (p *plain) Configure(inst *connectors.Instance) error { p.inst = inst; return nil }
func (p *plain) Credentials(context.Context, resourceid.ID) (connectors.Credentials, error) {
	return connectors.Credentials{Username: p.inst.Name, Secret: secret.New("plain-SECRET")}, nil
}

func testRegistry(is *issuer) *registry.Registry {
	r := registry.New()
	r.MustRegister(registry.Type{Spec: connectors.TypeSpec{Type: "issuer",
		AuthMethods: []connectors.AuthMethodSpec{{ID: "mint",
			Fields:     []connectors.FieldSpec{{Name: "tag", Type: connectors.FieldString}},
			Expiration: &connectors.ExpirationBounds{Min: 10, Default: 30, Max: 3600}}},
		ResourceTypes: []connectors.ResourceTypeSpec{{ID: connectors.ResourceTypeDockerRegistry, AuthMethods: []string{"mint"}, SupportsInstances: true, SupportsGlobs: true}},
	}, New: func() connectors.Connector { return &issued{is: is} }})
	r.MustRegister(registry.Type{Spec: connectors.TypeSpec{Type: "plain",
		AuthMethods:   []connectors.AuthMethodSpec{{ID: "x"}},
		ResourceTypes: []connectors.ResourceTypeSpec{{ID: connectors.ResourceTypeDockerRegistry, AuthMethods: []string{"x"}, SupportsInstances: true, SupportsGlobs: true}},
	}, New: func() connectors.Connector { return &plain{} }})
	return r
}

func build(t *testing.T, r *registry.Registry, entries ...connectors.Entry) []*connectors.Instance {
	t.Helper()
	var out []*connectors.Instance
	for _, e := range entries {
		inst, err := r.Instantiate(e, connectors.OSResolver{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, inst)
	}
	return out
}

// memStore is an empty credential store in memory.
type memStore struct{}

func (memStore) Get(context.Context, string) (store.Credential, error) {
	return store.Credential{}, store.ErrNotFound
}
func (memStore) Put(context.Context, string, store.Credential) error { return nil }
func (memStore) Delete(context.Context, string) (bool, error)        { return false, nil }
func (memStore) List(context.Context) ([]store.Entry, error)         { return nil, nil }

func get(t *testing.T, d *daemon.Daemon, url string) *ipc.Response {
	t.Helper()
	r := do(d, ipc.Request{Op: ipc.OpGet, ServerURL: url})
	if r.Error == nil && strings.Contains(r.Username, "SECRET") {
		t.Fatal("username carries a secret")
	}
	return r
}

func infos(t *testing.T, d *daemon.Daemon) map[string]connectors.Info {
	t.Helper()
	r := do(d, ipc.Request{Op: ipc.OpConnectors})
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	var l []connectors.Info
	if err := json.Unmarshal(r.Data, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]connectors.Info{}
	for _, i := range l {
		out[i.Name] = i
	}
	return out
}

// The tests below run in synctest bubbles with in-process connectors: no
// socket, so the virtual clock runs.

func TestExpiringConnectorIsCachedAndRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := &issuer{calls: map[string]int{}, fail: map[string]error{}}
		reg := testRegistry(is)
		d := daemon.New(daemon.Options{Store: memStore{}})
		defer d.Close()
		d.SetConnectors(build(t, reg, connectors.Entry{Name: "rot", Type: "issuer", ResourceID: "reg.example:5000"}))
		start := time.Now()
		for range 10 {
			for _, url := range []string{"reg.example:5000", "reg.example:5000/team/app", "https://reg.example:5000/v2/"} {
				if r := get(t, d, url); r.Error != nil || r.Username != "rot-1" {
					t.Fatalf("get %s = %+v", url, r)
				}
			}
		}
		if n := is.count("rot"); n != 1 {
			t.Fatalf("30 gets caused %d fetches, want 1", n)
		}
		info := infos(t, d)["rot"]
		if info.ExpiresAt == nil || !info.ExpiresAt.Equal(start.Add(30*time.Second)) || info.LastRefresh == nil || info.NextRefresh == nil ||
			!info.NextRefresh.After(start.Add(16*time.Second)) || info.NextRefresh.After(start.Add(20*time.Second)) {
			t.Fatalf("info = %+v", info)
		}
		// expiration_seconds = 30: renewed between +17 s and +20 s.
		time.Sleep(21 * time.Second)
		synctest.Wait()
		if n := is.count("rot"); n != 2 {
			t.Fatalf("%d fetches after 21 s, want 2", n)
		}
		if r := get(t, d, "reg.example:5000"); r.Username != "rot-2" {
			t.Fatalf("after renewal got %s", r.Username)
		}
	})
}

func TestFailingExpiringConnectorIsAClearError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := &issuer{calls: map[string]int{}, fail: map[string]error{"rot": errors.New("issuer exited 1: token service down")}}
		d := daemon.New(daemon.Options{Store: memStore{}})
		defer d.Close()
		d.SetConnectors(build(t, testRegistry(is), connectors.Entry{Name: "rot", Type: "issuer", ResourceID: "reg.example"}))
		r := get(t, d, "reg.example")
		if r.Error == nil || r.Error.Code != ipc.CodeUnavailable || !strings.Contains(r.Error.Message, "no valid credential") ||
			!strings.Contains(r.Error.Message, `connector "rot"`) || !strings.Contains(r.Error.Message, "token service down") {
			t.Fatalf("get = %+v, want unavailable naming the connector and the cause", r.Error)
		}
		info := infos(t, d)["rot"]
		if !strings.Contains(info.LastError, "token service down") || info.LastErrorAt == nil || info.Attempts != 1 || info.ExpiresAt != nil {
			t.Fatalf("info = %+v", info)
		}
		is.setFail("rot", nil)
		time.Sleep(time.Second)
		if r := get(t, d, "reg.example"); r.Error != nil {
			t.Fatalf("after recovery: %v", r.Error)
		}
	})
}

func TestReloadKeepsUnchangedAndStopsRemovedConnectors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		is := &issuer{calls: map[string]int{}, fail: map[string]error{}}
		reg := testRegistry(is)
		d := daemon.New(daemon.Options{Store: memStore{}})
		defer d.Close()
		keep := connectors.Entry{Name: "keep", Type: "issuer", ResourceID: "a.example", Config: map[string]any{"tag": "1"}}
		change := connectors.Entry{Name: "change", Type: "issuer", ResourceID: "b.example", Config: map[string]any{"tag": "1"}}
		drop := connectors.Entry{Name: "drop", Type: "issuer", ResourceID: "c.example"}
		d.SetConnectors(build(t, reg, keep, change, drop))
		for _, h := range []string{"a.example", "b.example", "c.example"} {
			if r := get(t, d, h); r.Error != nil {
				t.Fatal(r.Error)
			}
		}
		// A reload builds new instances; "keep" is identical, "change"
		// has another config, "drop" is gone.
		change.Config = map[string]any{"tag": "2"}
		d.SetConnectors(build(t, reg, keep, change))
		for _, h := range []string{"a.example", "b.example"} {
			if r := get(t, d, h); r.Error != nil {
				t.Fatal(r.Error)
			}
		}
		if k, c := is.count("keep"), is.count("change"); k != 1 || c != 2 {
			t.Fatalf("after reload: keep fetched %d times (want 1: its cache survives), change %d (want 2: a new definition fetches anew)", k, c)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := is.count("drop"); n != 1 {
			t.Fatalf("the removed connector fetched %d times, want 1: it must stop refreshing", n)
		}
		if _, ok := infos(t, d)["drop"]; ok {
			t.Fatal("the removed connector is still listed")
		}
	})
}

func TestGlobResolution(t *testing.T) {
	t.Parallel()
	is := &issuer{calls: map[string]int{}, fail: map[string]error{}}
	reg := testRegistry(is)
	d := daemon.New(daemon.Options{Store: memStore{}})
	defer d.Close()
	d.SetConnectors(build(t, reg,
		connectors.Entry{Name: "ecr-all", Type: "plain", ResourceID: "*.dkr.ecr.*.amazonaws.com"},
		connectors.Entry{Name: "ecr-eu", Type: "plain", ResourceID: "*.dkr.ecr.eu-west-1.amazonaws.com"},
		connectors.Entry{Name: "ecr-team", Type: "plain", ResourceID: "*.dkr.ecr.eu-west-1.amazonaws.com/team"},
		connectors.Entry{Name: "ecr-exact", Type: "plain", ResourceID: "123.dkr.ecr.eu-west-1.amazonaws.com/other"},
		connectors.Entry{Name: "any-one-label", Type: "plain", ResourceID: "*"},
	))
	tests := []struct{ url, want string }{
		{"999.dkr.ecr.us-east-1.amazonaws.com", "ecr-all"},
		{"999.dkr.ecr.eu-west-1.amazonaws.com", "ecr-eu"},
		{"999.dkr.ecr.eu-west-1.amazonaws.com/team/app", "ecr-team"},
		{"123.dkr.ecr.eu-west-1.amazonaws.com/other/app", "ecr-exact"},
		// An exact-host connector that does not cover the path leaves the
		// request to the globs.
		{"123.dkr.ecr.eu-west-1.amazonaws.com/team/app", "ecr-team"},
		{"localhost", "any-one-label"},
		{"localhost:5000", ""},
		{"dkr.ecr.eu-west-1.amazonaws.com", ""},
	}
	for _, tc := range tests {
		r := get(t, d, tc.url)
		switch {
		case tc.want == "" && (r.Error == nil || r.Error.Code != ipc.CodeNotFound):
			t.Errorf("get %s = %+v, want not found", tc.url, r)
		case tc.want != "" && (r.Error != nil || r.Username != tc.want):
			t.Errorf("get %s = %+v, want connector %s", tc.url, r, tc.want)
		}
	}
	// A stored credential for a host a glob serves would be shadowed.
	if r := do(d, ipc.Request{Op: ipc.OpStore, ServerURL: "5.dkr.ecr.ap-south-1.amazonaws.com", Username: "u", Secret: "p"}); r.Error == nil || r.Error.Code != ipc.CodeConflict || !strings.Contains(r.Error.Message, `"ecr-all"`) {
		t.Errorf("store under a glob = %+v, want a conflict naming ecr-all", r.Error)
	}
	// docker's list names registries; a glob is none.
	list := do(d, ipc.Request{Op: ipc.OpList}).Registries
	if len(list) != 1 || list["123.dkr.ecr.eu-west-1.amazonaws.com/other"] != "" {
		t.Errorf("list = %v, want only the exact connector", list)
	}
}

// Non-expiring connectors go through unchanged: no cache involved, no
// refresh fields shown.
func TestNonExpiringConnectorsShowNoRefreshState(t *testing.T) {
	t.Parallel()
	d, _ := newDaemon(t)
	for _, i := range infos(t, d) {
		if i.LastRefresh != nil || i.NextRefresh != nil || i.LastError != "" || i.Attempts != 0 {
			t.Errorf("%s: %+v", i.Name, i)
		}
	}
}
