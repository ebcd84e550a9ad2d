package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The suite's secret ledger: every password the tests hand to a registry,
// the daemon's config or a client, and every output the suite produced
// (client and CLI stdout and stderr, daemon logs). TestMain scans the one
// for the other once all tests are done.
var ledger struct {
	mu      sync.Mutex
	secrets map[string]string // needle → what it is
	outputs []recordedOutput
}

type recordedOutput struct {
	source string // test, command and stream, or daemon log
	text   string
}

// newPassword returns a fresh password for user and registers it, and the
// base64 of "user:password" (an Authorization header or a docker "auths"
// entry), with the scan. Passwords carry a non-hex prefix so that no digest
// can ever match one.
func newPassword(t testing.TB, user string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	pass := "pw-" + user + "-" + hex.EncodeToString(b)
	registerLogin(t.Name(), user, pass)
	return pass
}

func registerLogin(owner, user, pass string) {
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if ledger.secrets == nil {
		ledger.secrets = map[string]string{}
	}
	ledger.secrets[pass] = fmt.Sprintf("password of %s (%s)", user, owner)
	ledger.secrets[base64.StdEncoding.EncodeToString([]byte(user+":"+pass))] = fmt.Sprintf("base64 %s:password (%s)", user, owner)
}

// record adds an output to the scan. Empty outputs are skipped.
func record(source, text string) {
	if text == "" {
		return
	}
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	ledger.outputs = append(ledger.outputs, recordedOutput{source, text})
}

// recorded returns how many outputs and secrets the ledger holds.
func recorded() (outputs, secrets int) {
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	return len(ledger.outputs), len(ledger.secrets)
}

// scanForSecrets returns one line per (output, secret) hit in the ledger.
func scanForSecrets() []string {
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	return findSecrets(ledger.outputs, ledger.secrets)
}

// findSecrets reports every output that contains a secret. It names the
// output and what the secret is, never the secret itself.
func findSecrets(outputs []recordedOutput, secrets map[string]string) []string {
	needles := make([]string, 0, len(secrets))
	for s := range secrets {
		if s != "" {
			needles = append(needles, s)
		}
	}
	slices.Sort(needles)
	var hits []string
	for _, o := range outputs {
		for _, s := range needles {
			if strings.Contains(o.text, s) {
				hits = append(hits, fmt.Sprintf("%s: contains the %s", o.source, secrets[s]))
			}
		}
	}
	return hits
}

// The scan must be able to fail: a planted password (and its base64 form)
// is found, and a clean output is not reported.
func TestSecretScanFindsPlantedSecrets(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"pw-alice-0123": "password of alice",
		base64.StdEncoding.EncodeToString([]byte("alice:pw-alice-0123")): "base64 alice:password",
	}
	outputs := []recordedOutput{
		{"clean", "Login Succeeded\n"},
		{"plain", `time=... msg=get secret=pw-alice-0123`},
		{"header", "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw-alice-0123"))},
	}
	hits := findSecrets(outputs, secrets)
	want := []string{
		"plain: contains the password of alice",
		"header: contains the base64 alice:password",
	}
	if !slices.Equal(hits, want) {
		t.Errorf("findSecrets = %q, want %q", hits, want)
	}
	for _, h := range hits {
		if strings.Contains(h, "pw-alice-0123") {
			t.Errorf("a hit quotes the secret: %q", h)
		}
	}
}
