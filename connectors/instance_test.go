package connectors_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
)

func TestSkewFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lifetime, want time.Duration
	}{
		{0, 300 * time.Second},                // unknown lifetime: the seed's default
		{time.Hour, 300 * time.Second},        // long-lived: the default
		{60 * time.Second, 15 * time.Second},  // short-lived: a quarter, so it stays usable
		{20 * time.Minute, 300 * time.Second}, // a quarter equals the default
		{10 * time.Minute, 150 * time.Second},
	}
	for _, tc := range tests {
		if got := connectors.SkewFor(tc.lifetime); got != tc.want {
			t.Errorf("SkewFor(%s) = %s, want %s", tc.lifetime, got, tc.want)
		}
	}
}

func instantiate(t *testing.T, e connectors.Entry) *connectors.Instance {
	t.Helper()
	inst, err := registry.Default.Instantiate(e, connectors.OSResolver{})
	if err != nil {
		t.Fatal(err)
	}
	return inst
}

func TestHasExpiredUsesSkew(t *testing.T) {
	t.Parallel()
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	skew := int64(60)
	cfg := map[string]any{"username": "u", "password": "p"}
	def := instantiate(t, connectors.Entry{Name: "a", Type: "docker", ResourceID: "h", ExpiresAt: &exp, Config: cfg})
	custom := instantiate(t, connectors.Entry{Name: "b", Type: "docker", ResourceID: "h", ExpiresAt: &exp, ExpiresSkewTolerance: &skew, Config: cfg})
	never := instantiate(t, connectors.Entry{Name: "c", Type: "docker", ResourceID: "h", Config: cfg})
	tests := []struct {
		name string
		inst *connectors.Instance
		now  time.Time
		want bool
	}{
		{"well before", def, exp.Add(-time.Hour), false},
		{"inside default skew", def, exp.Add(-299 * time.Second), true},
		{"just outside default skew", def, exp.Add(-301 * time.Second), false},
		{"inside custom skew", custom, exp.Add(-59 * time.Second), true},
		{"outside custom skew", custom, exp.Add(-61 * time.Second), false},
		{"after expiry", custom, exp.Add(time.Second), true},
		{"no expiry", never, exp.Add(100 * time.Hour), false},
	}
	for _, tc := range tests {
		if got := tc.inst.HasExpired(tc.now); got != tc.want {
			t.Errorf("%s: HasExpired = %v, want %v", tc.name, got, tc.want)
		}
	}
	past := time.Now().Add(-time.Minute)
	expired := instantiate(t, connectors.Entry{Name: "d", Type: "docker", ResourceID: "h", ExpiresAt: &past, Config: cfg})
	if _, err := expired.Credentials(t.Context(), resourceid.MustParse("h")); err == nil || !strings.Contains(err.Error(), `connector "d": configured credentials expired`) {
		t.Errorf("expired connector handed out credentials or unclear error: %v", err)
	}
}

func TestDockerConnectorAndRedaction(t *testing.T) {
	t.Parallel()
	inst := instantiate(t, connectors.Entry{Name: "lab", Type: "docker", ResourceID: "Registry.Example.com:5000",
		Config: map[string]any{"username": "labuser-secret", "password": "labpass-secret"}})
	c, err := inst.Credentials(t.Context(), resourceid.MustParse("registry.example.com:5000/team/app"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != "labuser-secret" || c.Secret.Reveal() != "labpass-secret" || !c.ExpiresAt.IsZero() {
		t.Fatalf("credentials = %q %q %v", c.Username, c.Secret.Reveal(), c.ExpiresAt)
	}
	info := inst.Info()
	js, _ := json.Marshal(info)
	for _, out := range []string{string(js), fmt.Sprintf("%+v", info), fmt.Sprintf("%#v", inst.Config), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", inst), fmt.Sprintf("%#v", inst), fmt.Sprintf("%+v", inst.Impl()), fmt.Sprintf("%#v", *inst)} {
		if strings.Contains(out, "labpass-secret") || strings.Contains(out, "labuser-secret") {
			t.Errorf("secret printed: %s", out)
		}
	}
	if info.ResourceID != "registry.example.com:5000" || info.Origin != "config" || info.Config["password"] != "[REDACTED]" {
		t.Errorf("info = %+v", info)
	}
	if got := inst.Config.Revealed()["password"]; got != "labpass-secret" {
		t.Errorf("Revealed()[password] = %v", got)
	}
}

func TestSameDefinition(t *testing.T) {
	t.Parallel()
	e := connectors.Entry{Name: "lab", Type: "docker", ResourceID: "h", Config: map[string]any{"username": "u", "password": "p"}}
	a, b := instantiate(t, e), instantiate(t, e)
	if !a.SameDefinition(b) {
		t.Error("identical entries differ")
	}
	e.Config = map[string]any{"username": "u", "password": "p2"}
	if a.SameDefinition(instantiate(t, e)) {
		t.Error("a changed password went unnoticed")
	}
}
