package dockercfg

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: any file either fails to load with ErrMalformed or loads,
// survives every edit, and reloads from what Save would write with the
// same credentials.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{richConfig, `{}`, ``, `null`, `[]`, `{"auths":{"h":{"auth":"!"}}}`, `{"credHelpers":{"a":"b"},"credsStore":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			return
		}
		before := cfg.Plaintext()
		cfg.SetCredsStore("connector")
		cfg.SetCredHelper("docker.io", "connector")
		out, err := cfg.Marshal()
		if err != nil {
			t.Fatalf("Marshal after a successful Load: %v", err)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(path)
		if err != nil {
			t.Fatalf("our own output does not load: %v\n%s", err, out)
		}
		after := again.Plaintext()
		if len(before) != len(after) {
			t.Fatalf("credentials %d before, %d after a round trip", len(before), len(after))
		}
		for _, p := range before {
			if p.Err == nil {
				again.TakeCredential(p.Key)
			}
		}
		if _, err := again.Marshal(); err != nil {
			t.Fatal(err)
		}
	})
}
