package e2e

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectord/connectord/internal/testenv"
)

// TestDockerLoginLogout: `docker login -u USER --password-stdin HOST`
// with "credsStore": "connector" stores through the helper into the
// daemon's store; crane then pulls with what was stored; docker login to
// a registry a config connector serves is refused; `docker logout HOST`
// erases the stored credential.
//
// The docker CLI needs no engine here: it checks the login itself (GET
// /v2/ with the credentials) and then calls the helper's store. It needs
// no insecure-registry setting either, for plain HTTP or for TLS: docker
// treats 127.0.0.0/8 as insecure by default, so on loopback it tries
// HTTPS without verifying the certificate and falls back to plain HTTP.
// That is also why this test does not write
// /etc/docker/certs.d/HOST:PORT/ca.crt for the TLS case: on loopback the
// CLI never verifies the registry's certificate, so the CA file would be
// an unobservable, machine-wide side effect. (The TLS registry refuses
// plain HTTP, so a TLS login here does go over HTTPS.)
func TestDockerLoginLogout(t *testing.T) {
	t.Parallel()
	docker := testenv.Tool(t, "docker")
	crane := testenv.Tool(t, "crane")
	for _, mode := range []struct {
		name string
		tls  bool
	}{{"http", false}, {"tls", true}} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			// lab is served by a config connector; hub is not, so docker
			// login may store credentials for it.
			labPass := newPassword(t, "labuser")
			lab := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: mode.tls, Users: map[string]string{"labuser": labPass}})
			const user = "alice"
			pass := newPassword(t, user)
			hub := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: mode.tls, Users: map[string]string{user: pass}})
			digest := hub.SeedImage(t, seedRepo, seedTag, user, pass)

			d := startDaemon(t, daemonOpts{connectors: []connectorConf{{
				name: "lab", resourceID: lab.Host, username: "labuser", password: labPass, passwordFrom: "env",
			}}})
			c := newClient(t, d.socket, dockerConf{credsStore: true}, hub)
			dockerConfigFile := filepath.Join(c.dockerConfig, "config.json")

			// Before login crane gets nothing from the helper and the
			// registry says 401: the credential below really comes from
			// the login.
			if r := c.run(crane, append([]string{"manifest", seedRef(hub)}, craneFlags(hub)...)...); r.code == 0 || !is401(r.output()) {
				t.Fatalf("crane before docker login: want a 401 failure:\n%s", r)
			}

			// Login: the password goes on stdin, never in argv. docker
			// runs without SSL_CERT_FILE, as a user would run it: on
			// loopback it does not verify the certificate (see above).
			dockerCmd := func(stdin string, args ...string) result {
				t.Helper()
				return run(t, runOpts{env: unsetEnv(c.env, "SSL_CERT_FILE"), dir: c.work, stdin: stdin}, docker, args...)
			}
			// A wrong password: docker's own check gets the 401, and
			// nothing is stored.
			wrong := newPassword(t, user)
			if w := dockerCmd(wrong+"\n", "login", "-u", user, "--password-stdin", hub.Host); w.code == 0 || !is401(w.output()) {
				t.Errorf("docker login %s with a wrong password: want a 401 failure:\n%s", hub.Host, w)
			}
			if g := c.helper("get", hub.Host+"\n"); g.code != 1 || strings.TrimSpace(g.stdout) != notFound {
				t.Errorf("helper get %s after a failed docker login: want exit 1 and %q:\n%s", hub.Host, notFound, g)
			}

			l := dockerCmd(pass+"\n", "login", "-u", user, "--password-stdin", hub.Host)
			if l.code != 0 || !strings.Contains(l.stdout, "Login Succeeded") {
				t.Fatalf("docker login %s: want exit 0 and Login Succeeded:\n%s", hub.Host, l)
			}
			cfg, err := os.ReadFile(dockerConfigFile)
			if err != nil {
				t.Fatal(err)
			}
			// With credsStore docker keeps only an empty "auths" entry.
			if strings.Contains(string(cfg), pass) || strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte(user+":"+pass))) {
				t.Errorf("docker wrote the password into %s instead of the helper", dockerConfigFile)
			}
			e, ok := findEntry(c.list(d.socket), hub.Host)
			if !ok || e.Origin != "store" || e.Type != "docker" {
				t.Errorf("connectord list --json after docker login: entry for %s = %+v (found %v), want origin store, type docker", hub.Host, e, ok)
			}
			if got := c.getCreds(hub.Host); got.Username != user || got.Secret != pass {
				t.Errorf("helper get %s after docker login: username %q, secret matches: %v", hub.Host, got.Username, got.Secret == pass)
			}

			// crane pulls with what docker login stored.
			tarball := filepath.Join(c.dir, "image.tar")
			mustSucceed(t, c.run(crane, append([]string{"pull", seedRef(hub), tarball}, craneFlags(hub)...)...))
			if fi, err := os.Stat(tarball); err != nil || fi.Size() == 0 {
				t.Errorf("crane pull wrote no image tarball: %v", err)
			}
			if got := strings.TrimSpace(mustSucceed(t, c.run(crane, append([]string{"digest", seedRef(hub)}, craneFlags(hub)...)...)).stdout); got != digest {
				t.Errorf("crane digest with the stored credential: %s, want %s", got, digest)
			}

			// A registry served by a config connector: the login itself
			// works (the password is right), the store is refused.
			r := dockerCmd(labPass+"\n", "login", "-u", "labuser", "--password-stdin", lab.Host)
			if r.code == 0 || !strings.Contains(r.stderr, "served by connector") || !strings.Contains(r.stderr, `"lab"`) {
				t.Errorf("docker login to %s (served by connector lab): want a failure naming the connector:\n%s", lab.Host, r)
			}
			if _, ok := findEntry(c.list(d.socket), lab.Host); !ok {
				t.Errorf("connectord list lost connector lab after the refused login")
			}
			for _, e := range c.list(d.socket) {
				if e.ResourceID == lab.Host && e.Origin != "config" {
					t.Errorf("the refused docker login stored something for %s: %+v", lab.Host, e)
				}
			}

			// docker logout of the connector's registry: the daemon
			// refuses every erase (a config connector is changed in the
			// config), so the connector keeps serving. docker 28.2.2
			// ignores the helper's erase errors and prints "Removing login
			// credentials" with exit 0 anyway, so that output is not
			// asserted; the helper's own answer is.
			dockerCmd("", "logout", lab.Host)
			if got := c.getCreds(lab.Host); got.Username != "labuser" || got.Secret != labPass {
				t.Errorf("helper get %s after docker logout: username %q, secret is the connector's: %v", lab.Host, got.Username, got.Secret == labPass)
			}
			if e := c.helper("erase", lab.Host+"\n"); e.code != 1 || !strings.Contains(e.stdout, "served by connector") {
				t.Errorf("helper erase %s (served by connector lab): want exit 1 and a message naming the connector:\n%s", lab.Host, e)
			}

			// Logout erases it: the helper has nothing, list drops it, and
			// crane is back to 401.
			o := dockerCmd("", "logout", hub.Host)
			if o.code != 0 || !strings.Contains(o.stdout, "Removing login credentials for "+hub.Host) {
				t.Fatalf("docker logout %s:\n%s", hub.Host, o)
			}
			g := c.helper("get", hub.Host+"\n")
			if g.code != 1 || strings.TrimSpace(g.stdout) != notFound {
				t.Errorf("helper get %s after docker logout: want exit 1 and %q:\n%s", hub.Host, notFound, g)
			}
			if e, ok := findEntry(c.list(d.socket), hub.Host); ok {
				t.Errorf("connectord list --json still shows %s after docker logout: %+v", hub.Host, e)
			}
			if r := c.run(crane, append([]string{"manifest", seedRef(hub)}, craneFlags(hub)...)...); r.code == 0 || !is401(r.output()) {
				t.Errorf("crane after docker logout: want a 401 failure:\n%s", r)
			}
		})
	}
}
