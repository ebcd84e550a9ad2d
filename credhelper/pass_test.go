package credhelper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker-credential-helpers/client"
	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/store"
)

// The pass backend, with a throwaway gpg key: store, get, erase through
// the helper binary, with the secret landing in the password store (and
// not in connectord's own file).
func TestPassBackend(t *testing.T) {
	testenv.Tool(t, "pass")
	gpg := testenv.Tool(t, "gpg")
	dir := testenv.ShortTempDir(t)
	gnupg := filepath.Join(dir, "g")
	if err := os.Mkdir(gnupg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GNUPGHOME", gnupg)
	t.Setenv("PASSWORD_STORE_DIR", filepath.Join(dir, "p"))
	const id = "connectord-test@connectord.invalid"
	if out, errOut, code := testenv.Run(t, nil, "", gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "connectord test <"+id+">", "default", "default", "never"); code != 0 {
		t.Fatalf("gpg key generation: %s %s", out, errOut)
	}
	t.Cleanup(func() { testenv.Run(t, nil, "", "gpgconf", "--kill", "gpg-agent") })
	if out, errOut, code := testenv.Run(t, nil, "", "pass", "init", id); code != 0 {
		t.Fatalf("pass init: %s %s", out, errOut)
	}

	st, err := store.OpenPass()
	if err != nil {
		t.Fatal(err)
	}
	p := program(startDaemonWith(t, "", st))
	if err := client.Store(p, &credentials.Credentials{ServerURL: "https://Pass.Example:5000", Username: "alice", Secret: "pass-backend-secret"}); err != nil {
		t.Fatalf("store: %v", err)
	}
	// The credential is in the password store, encrypted, under the
	// canonical registry key.
	out, errOut, code := testenv.Run(t, nil, "", "pass", "ls")
	if code != 0 || !strings.Contains(out, "docker-credential-helpers") {
		t.Fatalf("pass ls after store: %q %q", out, errOut)
	}
	err = filepath.WalkDir(filepath.Join(dir, "p"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "pass-backend-secret") {
			t.Errorf("%s holds the secret in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second daemon on the same password store reads it back: the
	// backend, not the daemon's memory, holds it.
	st2, err := store.OpenPass()
	if err != nil {
		t.Fatal(err)
	}
	p2 := program(startDaemonWith(t, "", st2))
	got, err := client.Get(p2, "pass.example:5000")
	if err != nil || got.Username != "alice" || got.Secret != "pass-backend-secret" {
		t.Fatalf("get from a fresh daemon = %+v, %v", got, err)
	}
	list, err := client.List(p2)
	if err != nil || list["pass.example:5000"] != "alice" {
		t.Fatalf("list = %v, %v", list, err)
	}
	if err := client.Erase(p2, "pass.example:5000"); err != nil {
		t.Fatalf("erase: %v", err)
	}
	if _, err := client.Get(p2, "pass.example:5000"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("get after erase = %v", err)
	}
	st3, _ := store.OpenPass()
	if _, err := client.Get(program(startDaemonWith(t, "", st3)), "pass.example:5000"); !credentials.IsErrCredentialsNotFound(err) {
		t.Fatalf("erase did not reach the password store: %v", err)
	}
}
