package store

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open as the store file. Open must not
// panic; it either loads the file or moves it aside with a *CorruptError.
// Whatever it loads must be something Put would accept and must survive
// being written back unchanged, so a loaded store never rewrites itself
// into a different (or unloadable) file.
func FuzzOpen(f *testing.F) {
	// One directory per fuzzing process, emptied after every input: a new
	// t.TempDir per input costs more than Open itself. Inputs within a
	// process run one at a time, so they cannot collide.
	dir := f.TempDir()
	path := filepath.Join(dir, "credentials.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { clearDir(t, dir) })
		s, err := Open(path)
		if s == nil {
			t.Fatalf("Open returned no store: %v", err)
		}
		var ce *CorruptError
		switch {
		case err == nil:
			loaded := *s.creds.Load()
			for k, c := range loaded {
				if err := validate(k, c); err != nil {
					t.Fatalf("loaded an entry Put would reject: %v", err)
				}
			}
			enc, err := encode(loaded)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			again, err := decode(enc)
			if err != nil {
				t.Fatalf("cannot load what was written: %v", err)
			}
			if !maps.Equal(loaded, again) {
				t.Fatalf("write-back changed the store:\n%v\n%v", loaded, again)
			}
		case errors.As(err, &ce):
			backup, rerr := os.ReadFile(ce.Backup)
			if rerr != nil {
				t.Fatalf("backup: %v", rerr)
			}
			if !bytes.Equal(backup, data) {
				t.Fatal("backup does not hold the original bytes")
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("corrupt file still in place: %v", err)
			}
			if n := len(*s.creds.Load()); n != 0 {
				t.Fatalf("corrupt store has %d entries", n)
			}
		default:
			t.Fatalf("Open: unexpected error %v", err)
		}
	})
}

func clearDir(t *testing.T, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
