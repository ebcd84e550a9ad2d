package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/atomicfile"
	"github.com/connectord/connectord/secret"
	"github.com/connectord/connectord/store"
)

// plain is the secret every test stores; no output may contain it.
const plain = "hunter2-s3cr3t"

func storePath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "connectord", "credentials.json")
}

func open(t *testing.T, path string) *store.File {
	t.Helper()
	f, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f
}

func list(t *testing.T, f *store.File) []store.Entry {
	t.Helper()
	l, err := f.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return l
}

func noLeak(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, plain) || strings.Contains(s, fmt.Sprintf("%x", plain)) {
		t.Errorf("%s leaks the secret: %s", what, s)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)
	tests := []struct {
		name string
		key  string
		cred store.Credential
	}{
		{"docker hub", "https://index.docker.io/v1/", store.Credential{Username: "alice", Secret: secret.New(plain), UpdatedAt: at}},
		{"identity token", "ghcr.io", store.Credential{Username: "<token>", Secret: secret.New(plain + "-token"), UpdatedAt: at}},
		{"port and repo", "127.0.0.1:5000/team/app", store.Credential{Username: "bob", Secret: secret.New(`"quoted" <&> \back\ ` + "\n\t\x00"), UpdatedAt: at}},
		{"empty secret", "registry.example", store.Credential{Username: "carol", UpdatedAt: at}},
		{"unicode", "régistry.例え.jp", store.Credential{Username: "ünïcode", Secret: secret.New("pässwörd🔑"), UpdatedAt: at}},
		{"longest key", strings.Repeat("k", store.MaxKeyLen), store.Credential{Username: "dave", Secret: secret.New(plain), UpdatedAt: at}},
		{"non-UTC time", "quay.io", store.Credential{Username: "erin", Secret: secret.New(plain), UpdatedAt: at.In(time.FixedZone("X", 5*3600+1800))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := storePath(t)
			f := open(t, path)
			if err := f.Put(ctx, tt.key, tt.cred); err != nil {
				t.Fatalf("Put: %v", err)
			}
			want := tt.cred
			want.UpdatedAt = want.UpdatedAt.UTC()
			for _, g := range []*store.File{f, open(t, path)} {
				got, err := g.Get(ctx, tt.key)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				// == rather than Equal: memory must be exactly what a reload gives.
				if got != want {
					t.Errorf("Get = %#v / %q, want %#v / %q", got, got.Secret.Reveal(), want, want.Secret.Reveal())
				}
				if l := list(t, g); len(l) != 1 || l[0].Key != tt.key || l[0].Credential != want {
					t.Errorf("List = %#v", l)
				}
			}
		})
	}
}

func TestOnDiskFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := storePath(t)
	f := open(t, path)
	at := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	if err := f.Put(ctx, "ghcr.io", store.Credential{Username: "<token>", Secret: secret.New(plain), UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(`"<token>"`)) {
		t.Errorf("the identity-token marker is not stored verbatim:\n%s", raw)
	}
	var doc struct {
		Version     int `json:"version"`
		Credentials map[string]struct {
			Username  string `json:"username"`
			Secret    string `json:"secret"`
			UpdatedAt string `json:"updated_at"`
		} `json:"credentials"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("file is not the documented format: %v\n%s", err, raw)
	}
	c, ok := doc.Credentials["ghcr.io"]
	if doc.Version != 1 || !ok || c.Username != "<token>" || c.Secret != plain || c.UpdatedAt != at.Format(time.RFC3339Nano) {
		t.Errorf("file = %s", raw)
	}
}

func TestModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dirMode  os.FileMode // 0: the directory does not exist yet
		fileMode os.FileMode // 0: the file does not exist yet
	}{
		{name: "fresh"},
		{name: "loose dir", dirMode: 0o755},
		{name: "loose dir and file", dirMode: 0o755, fileMode: 0o644},
		{name: "group-readable file", dirMode: 0o700, fileMode: 0o640},
		{name: "already private", dirMode: 0o700, fileMode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := storePath(t)
			dir := filepath.Dir(path)
			if tt.dirMode != 0 {
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tt.dirMode); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fileMode != 0 {
				if err := os.WriteFile(path, []byte(`{"version":1,"credentials":{}}`), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.fileMode); err != nil {
					t.Fatal(err)
				}
			}
			f := open(t, path)
			checkMode(t, dir, os.ModeDir|0o700)
			if tt.fileMode != 0 {
				// Tightened by Open, before any write.
				checkMode(t, path, 0o600)
			} else if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Open created the store file: %v", err)
			}
			if err := f.Put(context.Background(), "k", store.Credential{Username: "u", Secret: secret.New(plain)}); err != nil {
				t.Fatal(err)
			}
			checkMode(t, dir, os.ModeDir|0o700)
			checkMode(t, path, 0o600)
		})
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := storePath(t)
	f := open(t, path)
	if f.Path() != path {
		t.Errorf("Path() = %q, want %q", f.Path(), path)
	}
	if l := list(t, f); len(l) != 0 {
		t.Errorf("List = %v, want empty", l)
	}
	existed, err := f.Delete(ctx, "nothing")
	if existed || err != nil {
		t.Errorf("Delete(missing) = %v, %v; want false, nil", existed, err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleting a missing key wrote the file: %v", err)
	}
	_, err = f.Get(ctx, "https://index.docker.io/v1/")
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `"https://index.docker.io/v1/"`) {
		t.Errorf("Get(missing) err = %v, want ErrNotFound naming the key", err)
	}
}

func TestPutDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := storePath(t)
	f := open(t, path)
	put := func(k, u string) {
		t.Helper()
		if err := f.Put(ctx, k, store.Credential{Username: u, Secret: secret.New(plain)}); err != nil {
			t.Fatal(err)
		}
	}
	put("b", "1")
	put("a", "2")
	put("c", "3")
	put("b", "4") // replaces
	existed, err := f.Delete(ctx, "c")
	if !existed || err != nil {
		t.Fatalf("Delete(c) = %v, %v", existed, err)
	}
	for _, g := range []*store.File{f, open(t, path)} {
		l := list(t, g)
		var got []string
		for _, e := range l {
			got = append(got, e.Key+"="+e.Credential.Username)
		}
		if want := []string{"a=2", "b=4"}; !reflect.DeepEqual(got, want) {
			t.Errorf("List = %v, want %v (sorted by key)", got, want)
		}
	}
}

func TestUpdatedAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := open(t, storePath(t))
	before := time.Now().UTC()
	if err := f.Put(ctx, "k", store.Credential{Username: "u"}); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	c, err := f.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if c.UpdatedAt.Before(before) || c.UpdatedAt.After(after) || c.UpdatedAt.Location() != time.UTC {
		t.Errorf("UpdatedAt = %v, want a UTC time in [%v, %v]", c.UpdatedAt, before, after)
	}
	reloaded, err := open(t, f.Path()).Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if reloaded != c {
		t.Errorf("reloaded %#v, in memory %#v", reloaded, c)
	}
}

func TestPutRejects(t *testing.T) {
	t.Parallel()
	good := store.Credential{Username: "u", Secret: secret.New(plain)}
	tests := []struct {
		name string
		key  string
		cred store.Credential
		want string
	}{
		{"empty key", "", good, "empty key"},
		{"key too long", strings.Repeat("k", store.MaxKeyLen+1), good, "4097 bytes"},
		{"empty username", "k", store.Credential{Secret: secret.New(plain)}, "empty username"},
		{"key not UTF-8", "k\xff", good, "key is not valid UTF-8"},
		{"username not UTF-8", "k", store.Credential{Username: "u\xff", Secret: secret.New(plain)}, "username is not valid UTF-8"},
		{"secret not UTF-8", "k", store.Credential{Username: "u", Secret: secret.New(plain + "\xff")}, "secret is not valid UTF-8"},
		{"year 10000", "k", store.Credential{Username: "u", UpdatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside 0-9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := storePath(t)
			f := open(t, path)
			err := f.Put(context.Background(), tt.key, tt.cred)
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Put err = %v, want ErrInvalid saying %q", err, tt.want)
			}
			noLeak(t, "Put error", err.Error())
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a rejected Put wrote the file: %v", err)
			}
		})
	}
}

var backupName = regexp.MustCompile(`\.corrupt-\d{8}T\d{6}Z$`)

func TestCorrupt(t *testing.T) {
	t.Parallel()
	valid := `{"version":1,"credentials":{"k":{"username":"u","secret":"` + plain + `","updated_at":"2025-01-02T03:04:05Z"}}}`
	tests := []struct {
		name string
		data string
		want string // in the CorruptError's message
	}{
		{"garbage", "\x00\x01not json " + plain, "invalid JSON at byte"},
		{"truncated", valid[:len(valid)-20], "truncated JSON"},
		{"empty", "", "empty file"},
		{"wrong version", strings.Replace(valid, `"version":1`, `"version":2`, 1), "unknown version 2"},
		{"no version", strings.Replace(valid, `"version":1,`, ``, 1), "unknown version 0"},
		{"trailing data", valid + plain, "data after the JSON document"},
		// encoding/json would quote the field name; the secret is the name here.
		{"unknown field", strings.Replace(valid, `"username"`, `"`+plain+`"`, 1), "unknown field or wrong structure"},
		{"wrong type", strings.Replace(valid, `"version":1`, `"version":"`+plain+`"`, 1), "wrong JSON type"},
		{"huge number", strings.Replace(valid, `"version":1`, `"version":1`+strings.Repeat("9", 30), 1), "wrong JSON type"},
		{"empty username", strings.Replace(valid, `"username":"u"`, `"username":""`, 1), "empty username"},
		{"null entry", `{"version":1,"credentials":{"k":null}}`, "empty username"},
		{"bad time", strings.Replace(valid, `2025-01-02T03:04:05Z`, plain, 1), "not an RFC 3339 time"},
		{"array", `[` + valid + `]`, "wrong JSON type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := storePath(t)
			if err := atomicfile.EnsureDir(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(tt.data), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := store.Open(path)
			var ce *store.CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open err = %v, want *CorruptError", err)
			}
			if f == nil {
				t.Fatal("Open returned a nil *File with the CorruptError")
			}
			msg := err.Error()
			if ce.Path != path || !strings.HasPrefix(ce.Backup, path) || !backupName.MatchString(ce.Backup) {
				t.Errorf("Path = %q, Backup = %q", ce.Path, ce.Backup)
			}
			for _, s := range []string{path, ce.Backup, tt.want} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			if errors.Unwrap(err) != ce.Err || ce.Err == nil {
				t.Errorf("Unwrap = %v, want Err %v", errors.Unwrap(err), ce.Err)
			}
			noLeak(t, "CorruptError", msg)
			got, err := os.ReadFile(ce.Backup)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.data {
				t.Errorf("backup holds %q, want the original bytes", got)
			}
			// The file held a secret, so its backup must be private too.
			checkMode(t, ce.Backup, 0o600)
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the corrupt file is still at %s: %v", path, err)
			}
			if l := list(t, f); len(l) != 0 {
				t.Errorf("List = %v, want empty", l)
			}
			if err := f.Put(ctx, "after", store.Credential{Username: "u", Secret: secret.New(plain)}); err != nil {
				t.Fatalf("Put after corruption: %v", err)
			}
			if l := list(t, open(t, path)); len(l) != 1 || l[0].Key != "after" {
				t.Errorf("reopened List = %v", l)
			}
		})
	}
}

// Two corruptions in the same second must not overwrite each other's
// backup. The backup names for this second and the next two are taken in
// advance, so the test does not depend on when the second ticks.
func TestCorruptBackupNameTaken(t *testing.T) {
	t.Parallel()
	path := storePath(t)
	if err := atomicfile.EnsureDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 3 {
		name := path + ".corrupt-" + now.Add(time.Duration(i)*time.Second).Format("20060102T150405Z")
		if err := os.WriteFile(name, []byte("earlier"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := store.Open(path)
	var ce *store.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open err = %v, want *CorruptError", err)
	}
	if !strings.HasSuffix(ce.Backup, ".1") {
		t.Errorf("Backup = %q, want a .1 suffix", ce.Backup)
	}
	if got, _ := os.ReadFile(ce.Backup); string(got) != "garbage" {
		t.Errorf("backup = %q", got)
	}
	matches, _ := filepath.Glob(path + ".corrupt-*")
	for _, m := range matches {
		if m == ce.Backup {
			continue
		}
		if got, _ := os.ReadFile(m); string(got) != "earlier" {
			t.Errorf("earlier backup %s was overwritten: %q", m, got)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
		want  string
	}{
		{
			name: "path is a directory",
			setup: func(t *testing.T, path string) {
				if err := os.MkdirAll(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			want: "not a regular file",
		},
		{
			name: "parent is a file",
			setup: func(t *testing.T, path string) {
				if err := os.WriteFile(filepath.Dir(path), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: "not a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := storePath(t)
			tt.setup(t, path)
			f, err := store.Open(path)
			var ce *store.CorruptError
			if err == nil || errors.As(err, &ce) || f != nil {
				t.Fatalf("Open = %v, %v; want nil and a plain error", f, err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want it to name %s and say %q", err, path, tt.want)
			}
		})
	}
}

// Writes that fail for real even as root, after a successful Open. The
// failed change must leave memory as it was, and memory must match what
// is on disk once the disk is reachable again.
func TestRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// breakIt makes writes to path fail and returns how to undo that.
		breakIt func(t *testing.T, path string) (restore func())
	}{
		{
			// The store's directory becomes a regular file: EnsureDir (and
			// os.CreateTemp after it) fail with "not a directory".
			name: "directory replaced by a file",
			breakIt: func(t *testing.T, path string) func() {
				dir := filepath.Dir(path)
				mustRename(t, dir, dir+".away")
				if err := os.WriteFile(dir, []byte("in the way"), 0o600); err != nil {
					t.Fatal(err)
				}
				return func() {
					mustRemove(t, dir)
					mustRename(t, dir+".away", dir)
				}
			},
		},
		{
			// A non-empty directory at the store path: atomicfile.WriteFile
			// creates, writes and syncs its temp file, then the rename over
			// the directory fails.
			name: "directory at the store path",
			breakIt: func(t *testing.T, path string) func() {
				mustRename(t, path, path+".saved")
				if err := os.MkdirAll(filepath.Join(path, "child"), 0o700); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.RemoveAll(path); err != nil {
						t.Fatal(err)
					}
					mustRename(t, path+".saved", path)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := storePath(t)
			f := open(t, path)
			orig := store.Credential{Username: "alice", Secret: secret.New("old-" + plain), UpdatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			if err := f.Put(ctx, "kept", orig); err != nil {
				t.Fatal(err)
			}
			before := list(t, f)
			restore := tt.breakIt(t, path)

			var errs []error
			if err := f.Put(ctx, "kept", store.Credential{Username: "mallory", Secret: secret.New(plain)}); err == nil {
				t.Error("Put (replace) succeeded on a broken store")
			} else {
				errs = append(errs, err)
			}
			if err := f.Put(ctx, "new", store.Credential{Username: "bob", Secret: secret.New(plain)}); err == nil {
				t.Error("Put (new key) succeeded on a broken store")
			} else {
				errs = append(errs, err)
			}
			if existed, err := f.Delete(ctx, "kept"); err == nil || existed {
				t.Errorf("Delete on a broken store = %v, %v; want false and an error", existed, err)
			} else {
				errs = append(errs, err)
			}
			for _, err := range errs {
				if !strings.Contains(err.Error(), path) && !strings.Contains(err.Error(), filepath.Dir(path)) {
					t.Errorf("error %q names neither the file nor its directory", err)
				}
				noLeak(t, "write error", err.Error())
			}
			if got := list(t, f); !reflect.DeepEqual(got, before) {
				t.Errorf("memory changed after failed writes:\n got %#v\nwant %#v", got, before)
			}
			if _, err := f.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(new) err = %v, want ErrNotFound", err)
			}

			restore()
			if got := list(t, open(t, path)); !reflect.DeepEqual(got, before) {
				t.Errorf("disk differs from memory:\n disk %#v\n  mem %#v", got, before)
			}
			// And the store works again once the disk does.
			if err := f.Put(ctx, "new", store.Credential{Username: "bob", Secret: secret.New(plain)}); err != nil {
				t.Fatalf("Put after restore: %v", err)
			}
			if got := list(t, open(t, path)); len(got) != 2 {
				t.Errorf("after restore, disk holds %d entries, want 2", len(got))
			}
		})
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// The directory vanishing under a long-running daemon is repaired by the
// next write instead of failing every write until restart.
func TestDirectoryRecreated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := storePath(t)
	f := open(t, path)
	if err := f.Put(ctx, "a", store.Credential{Username: "u"}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "b", store.Credential{Username: "u"}); err != nil {
		t.Fatalf("Put after the directory was removed: %v", err)
	}
	checkMode(t, filepath.Dir(path), os.ModeDir|0o700)
	if got := list(t, open(t, path)); len(got) != 2 {
		t.Errorf("disk holds %v, want a and b", got)
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := storePath(t)
	f := open(t, path)
	const workers, ops = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ops {
				key := fmt.Sprintf("registry-%d.example", (w+i)%5)
				switch i % 4 {
				case 0, 1:
					c := store.Credential{Username: fmt.Sprintf("w%d-%d", w, i), Secret: secret.New(plain)}
					if err := f.Put(ctx, key, c); err != nil {
						t.Errorf("Put: %v", err)
					}
				case 2:
					if _, err := f.Get(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("Get: %v", err)
					}
					if _, err := f.List(ctx); err != nil {
						t.Errorf("List: %v", err)
					}
				case 3:
					if _, err := f.Delete(ctx, key); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	if mem, disk := list(t, f), list(t, open(t, path)); !reflect.DeepEqual(mem, disk) {
		t.Errorf("memory and disk disagree after concurrent use:\n mem %#v\ndisk %#v", mem, disk)
	}
	if n := tempFiles(t, filepath.Dir(path)); n != 0 {
		t.Errorf("%d temp files left behind", n)
	}
}

func tempFiles(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			n++
		}
	}
	return n
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	path := storePath(t)
	f := open(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get err = %v", err)
	}
	if _, err := f.List(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("List err = %v", err)
	}
	if err := f.Put(ctx, "k", store.Credential{Username: "u"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put err = %v", err)
	}
	if _, err := f.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete err = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a canceled Put wrote the file: %v", err)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := open(t, storePath(t))
	c := store.Credential{Username: "u", Secret: secret.New(plain), UpdatedAt: time.Now()}
	if err := f.Put(ctx, "k", c); err != nil {
		t.Fatal(err)
	}
	got, err := f.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	entries := list(t, f)
	js, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{"json": string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outputs[verb+" credential"] = fmt.Sprintf(verb, got)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &got)
		outputs[verb+" entries"] = fmt.Sprintf(verb, entries)
	}
	for what, out := range outputs {
		noLeak(t, what, out)
	}
	_, err = f.Get(ctx, "missing")
	noLeak(t, "ErrNotFound", err.Error())
}
