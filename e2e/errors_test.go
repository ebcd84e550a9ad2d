package e2e

import (
	"encoding/json"
	"testing"

	"github.com/connectord/connectord/internal/testenv"
)

// TestWrongPassword: a config connector with a wrong password. The helper
// hands it out (it cannot know), and every client fails with the
// registry's 401, as it would with a wrong password in its own config.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	const user = "labuser"
	pass := newPassword(t, user)
	wrong := newPassword(t, user) // registered too: it must not leak either
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Users: map[string]string{user: pass}})
	reg.SeedImage(t, seedRepo, seedTag, user, pass)
	d := startDaemon(t, daemonOpts{connectors: []connectorConf{{name: "lab", resourceID: reg.Host, username: user, password: wrong}}})

	// The daemon does serve the (wrong) credential: the failures below
	// are the registry's answer to it, not a missing credential.
	c := newClient(t, d.socket, dockerConf{credsStore: true}, reg)
	if got := c.getCreds(reg.Host); got.Username != user || got.Secret != wrong {
		t.Fatalf("helper get %s: username %q, secret is the configured one: %v", reg.Host, got.Username, got.Secret == wrong)
	}

	for _, cc := range []struct {
		tool string
		dc   dockerConf
		args []string
	}{
		{"crane", dockerConf{credsStore: true}, append([]string{"manifest", seedRef(reg)}, craneFlags(reg)...)},
		{"oras", dockerConf{credsStore: true}, append([]string{"manifest", "fetch", seedRef(reg)}, orasFlags(reg)...)},
		{"regctl", dockerConf{credsStore: true}, []string{"manifest", "get", seedRef(reg)}},
		{"skopeo", dockerConf{credHelpers: []string{reg.Host}}, append(append([]string{"inspect"}, containersFlags(reg)...), "docker://"+seedRef(reg))},
	} {
		t.Run(cc.tool, func(t *testing.T) {
			t.Parallel()
			tool := testenv.Tool(t, cc.tool)
			c := newClient(t, d.socket, cc.dc, reg)
			if cc.tool == "regctl" {
				// Without --skip-check, registry set itself pings the
				// registry with the credential and fails with the 401.
				mustSucceed(t, c.run(tool, "registry", "set", "--tls", "disabled", "--skip-check", reg.Host))
			}
			r := c.run(tool, cc.args...)
			if r.code == 0 || !is401(r.output()) {
				t.Errorf("%s with a wrong password: want a failure with the registry's 401 (UNAUTHORIZED or 401):\n%s", cc.tool, r)
			}
		})
	}
}

// TestUnknownRegistry: for a registry that no connector serves and
// nothing was stored for, the helper prints docker's exact not-found text
// and exits 1, and clients then go anonymous: a pull from an open
// registry works with "credsStore": "connector" (and, for skopeo,
// credHelpers).
func TestUnknownRegistry(t *testing.T) {
	t.Parallel()
	const user = "labuser"
	pass := newPassword(t, user)
	// The daemon has a connector, but for another registry (never
	// contacted by this test).
	d := startDaemon(t, daemonOpts{connectors: []connectorConf{{name: "lab", resourceID: "127.0.0.1:1", username: user, password: pass}}})
	open := testenv.StartRegistry(t, testenv.RegistryOptions{})
	digest := open.SeedImage(t, seedRepo, seedTag, "", "")

	t.Run("helper get", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, d.socket, dockerConf{credsStore: true})
		for _, server := range []string{open.Host, "https://" + open.Host, open.Host + "/" + seedRepo} {
			r := c.helper("get", server+"\n")
			if r.code != 1 || r.stdout != notFound+"\n" {
				t.Errorf("helper get %s: want exit 1 and exactly %q on stdout:\n%s", server, notFound, r)
			}
		}
	})

	t.Run("crane anonymous pull", func(t *testing.T) {
		t.Parallel()
		crane := testenv.Tool(t, "crane")
		c := newClient(t, d.socket, dockerConf{credsStore: true}, open)
		m := mustSucceed(t, c.run(crane, append([]string{"manifest", seedRef(open)}, craneFlags(open)...)...))
		if got := sha256Digest([]byte(m.stdout)); got != digest {
			t.Errorf("crane manifest: digest %s, want %s", got, digest)
		}
		x := mustSucceed(t, c.run(crane, append([]string{"export", seedRef(open), "-"}, craneFlags(open)...)...))
		if got, want := fileInTar(t, []byte(x.stdout), testenv.SeedFile), testenv.SeedContent(seedRepo, seedTag); got != want {
			t.Errorf("crane export: %s holds %q, want %q", testenv.SeedFile, got, want)
		}
	})

	t.Run("skopeo anonymous inspect", func(t *testing.T) {
		t.Parallel()
		skopeo := testenv.Tool(t, "skopeo")
		c := newClient(t, d.socket, dockerConf{credHelpers: []string{open.Host}}, open)
		i := mustSucceed(t, c.run(skopeo, append(append([]string{"inspect"}, containersFlags(open)...), "docker://"+seedRef(open))...))
		var got struct{ Digest string }
		if err := json.Unmarshal([]byte(i.stdout), &got); err != nil || got.Digest != digest {
			t.Errorf("skopeo inspect: Digest %q (%v), want %s", got.Digest, err, digest)
		}
	})
}
