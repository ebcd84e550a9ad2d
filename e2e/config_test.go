package e2e

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
)

// TestConfigSyntaxErrorHidesPassword: a password written without quotes,
// or with a broken escape, makes config.toml invalid TOML. connectord must
// refuse the file and say where the problem is, but never echo the value:
// the message goes to the daemon's log (the journal under systemd) and,
// when the helper autostarts the daemon, onto the helper's stdout, which
// crane and docker print to the user ("error getting credentials - err:
// exit status 1, out: `...`").
//
// The same goes for a running daemon that re-reads a broken file: its log
// and `connectord status` show the problem.
//
// It fails today: config.Parse copies the TOML parser's message, which
// quotes the text it choked on (`expected value but found "PASSWORD"
// instead`; `expected four hexadecimal digits after '\u', but got
// "PASSWORD\\u12\"" instead`).
func TestConfigSyntaxErrorHidesPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// password returns a password registered with the secret scan;
		// line is its config line.
		password func(t *testing.T) string
		line     func(pass string) string
	}{
		{"unquoted", lettersPassword, func(p string) string { return "password = " + p }},
		{"bad escape", func(t *testing.T) string { return newPassword(t, "labuser") }, func(p string) string { return `password = "` + p + `\u12"` }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pass := tc.password(t)
			config := "[[connector]]\nname = \"lab\"\ntype = \"docker\"\nresource_id = \"registry.example.com\"\n\n[connector.config]\nusername = \"labuser\"\n" + tc.line(pass) + "\n"
			const badLine = "line 8"

			// connectord serve refuses the file and names the line.
			dir := t.TempDir()
			cfgPath := writeFile(t, filepath.Join(dir, "config.toml"), config)
			socket := filepath.Join(testenv.ShortTempDir(t), "connectord.sock")
			r := run(t, runOpts{env: setEnv(cleanEnv(), "HOME", dir)}, filepath.Join(binDir, "connectord"), "serve",
				"--config", cfgPath, "--socket", socket, "--store", filepath.Join(dir, "store", "credentials.json"))
			if r.code != 1 || !strings.Contains(r.stderr, badLine) {
				t.Errorf("connectord serve with a broken config: want exit 1 and %q in the message:\n%s", badLine, r)
			}
			if strings.Contains(r.output(), pass) {
				t.Errorf("connectord serve echoes the password from the broken config line in its error (the daemon's log):\n%s", r)
			}

			// The helper autostarts a daemon, which fails on the same file.
			c := newClient(t, socket, dockerConf{credsStore: true})
			c.env = unsetEnv(c.env, "CONNECTORD_NO_AUTOSTART")
			writeFile(t, filepath.Join(envValue(c.env, "XDG_CONFIG_HOME"), "connectord", "config.toml"), config)
			logPath := filepath.Join(envValue(c.env, "XDG_STATE_HOME"), "connectord", "connectord.log")
			// Should a daemon accept the file after all, stop it; this also
			// records its log for the secret scan.
			t.Cleanup(func() { stopAutostarted(t, c, socket, logPath) })
			h := c.helper("get", "registry.example.com\n")
			log, _ := os.ReadFile(logPath)
			// (Whether the message also quotes the daemon's complaint
			// depends on the daemon failing within the helper's 2 s
			// autostart wait, so only the exit status is asserted.)
			if h.code != 1 {
				t.Errorf("helper get autostarting with a broken config: want exit 1:\n%s", h)
			}
			if strings.Contains(h.output(), pass) {
				t.Errorf("the helper's error (what crane and docker show the user) echoes the password from the broken config line:\n%s", h)
			}
			if strings.Contains(string(log), pass) {
				t.Errorf("the autostarted daemon's log %s echoes the password from the broken config line:\n%s", logPath, log)
			}

			// A running daemon re-reads its config on SIGHUP (and on a
			// change in its directory): it rejects the broken file, keeps
			// serving the previous config, logs the problem and shows it
			// in `connectord status`.
			good := newPassword(t, "labuser")
			d := startDaemon(t, daemonOpts{connectors: []connectorConf{{name: "lab", resourceID: "registry.example.com", username: "labuser", password: good}}})
			// Replace the file atomically, as an editor does: the watcher
			// must never read a half-written file.
			tmp := writeFile(t, filepath.Join(t.TempDir(), "config.toml"), config)
			if err := os.Rename(tmp, d.config); err != nil {
				t.Fatal(err)
			}
			if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			dc := newClient(t, d.socket, dockerConf{credsStore: true})
			guard := time.After(daemonStartGuard)
			for {
				st := mustSucceed(t, dc.connectord("status", "--json", "--socket", d.socket))
				var s struct {
					LastLoad *struct{ OK bool } `json:"last_load"`
				}
				if err := json.Unmarshal([]byte(st.stdout), &s); err != nil {
					t.Fatalf("connectord status --json: %v\n%s", err, st)
				}
				if s.LastLoad != nil && !s.LastLoad.OK {
					break
				}
				select {
				case <-guard:
					t.Fatalf("the daemon never rejected the broken config; log:\n%s", d.log())
				case <-time.After(20 * time.Millisecond):
				}
			}
			st := mustSucceed(t, dc.connectord("status", "--socket", d.socket))
			if !strings.Contains(st.stdout, badLine) {
				t.Errorf("connectord status after the rejected reload does not show %q:\n%s", badLine, st)
			}
			if strings.Contains(st.output(), pass) {
				t.Errorf("connectord status echoes the password from the broken config line:\n%s", st)
			}
			if strings.Contains(d.log(), pass) {
				t.Errorf("the running daemon's log echoes the password from the broken config line:\n%s", d.log())
			}
			if got := dc.getCreds("registry.example.com"); got.Secret != good {
				t.Errorf("after the rejected reload the daemon no longer serves the previous config's password")
			}
		})
	}
}

// lettersPassword is a password of lowercase letters only, registered with
// the secret scan: TOML reads such a bare word as one token.
func lettersPassword(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	pass := "pwletters" + string(b)
	registerLogin(t.Name(), "labuser", pass)
	return pass
}
