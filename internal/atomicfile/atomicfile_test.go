package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// names lists dir, so a test can tell that no temp file was left behind.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriteFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		old  []byte // nil: no file before the write
		data []byte
		perm os.FileMode
	}{
		{name: "new file", data: []byte("hello"), perm: 0o600},
		{name: "replace", old: []byte("old contents that are longer"), data: []byte("new"), perm: 0o600},
		{name: "empty", old: []byte("x"), data: []byte{}, perm: 0o600},
		// 0644 would be reduced to 0600 by nothing if chmod were skipped
		// (CreateTemp uses 0600), so this checks the chmod happens.
		{name: "wider mode", data: []byte("public"), perm: 0o644},
		// A mode umask would strip: fchmod ignores umask.
		{name: "group write", data: []byte("g"), perm: 0o660},
		{name: "replace tightens", old: []byte("was 0644"), data: []byte("now 0600"), perm: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "file.json")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, tt.data, tt.perm); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("contents = %q, want %q", got, tt.data)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tt.perm {
				t.Errorf("mode = %v, want %v", fi.Mode(), tt.perm)
			}
			if n := names(t, dir); !slices.Equal(n, []string{"file.json"}) {
				t.Errorf("directory holds %q, want only file.json", n)
			}
		})
	}
}

func TestWriteFileRelativePath(t *testing.T) {
	// Not parallel: it changes the working directory.
	dir := t.TempDir()
	t.Chdir(dir)
	if err := WriteFile("rel.json", []byte("r"), 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "rel.json")); err != nil || string(got) != "r" {
		t.Fatalf("ReadFile = %q, %v", got, err)
	}
}

// Failures that happen for real even as root.
func TestWriteFileRealFailures(t *testing.T) {
	t.Parallel()

	t.Run("parent is a regular file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		notDir := filepath.Join(dir, "plain")
		if err := os.WriteFile(notDir, []byte("i am a file"), 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(notDir, "file.json")
		err := WriteFile(path, []byte("x"), 0o600)
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("err = %v, want ENOTDIR", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if got, _ := os.ReadFile(notDir); string(got) != "i am a file" {
			t.Errorf("the blocking file changed: %q", got)
		}
	})

	// rename(2) of a file over a non-empty directory fails with EISDIR
	// whoever we are. This fails after the temp file was created, written
	// and synced, so it checks the real cleanup path.
	t.Run("target is a directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "file.json")
		if err := os.MkdirAll(filepath.Join(path, "child"), 0o700); err != nil {
			t.Fatal(err)
		}
		err := WriteFile(path, []byte("x"), 0o600)
		if err == nil {
			t.Fatal("WriteFile over a directory succeeded")
		}
		if !errors.Is(err, syscall.EISDIR) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Errorf("err = %v, want EISDIR/ENOTEMPTY/EEXIST", err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "rename") {
			t.Errorf("error %q does not name the path and the rename", err)
		}
		if n := names(t, dir); !slices.Equal(n, []string{"file.json"}) {
			t.Errorf("directory holds %q, want only file.json (temp file left behind?)", n)
		}
		if fi, err := os.Stat(filepath.Join(path, "child")); err != nil || !fi.IsDir() {
			t.Errorf("the directory at path was disturbed: %v", err)
		}
	})
}

// Steps that cannot be made to fail for real here (root ignores
// permissions; no full or read-only filesystem is available) are failed
// through the package's fault hook. The write step fails for real in
// TestWriteFileWriteFailureKeepsOldFile.
func TestWriteFileInjectedFailures(t *testing.T) {
	t.Parallel()
	old := []byte(`{"old":true}`)
	for _, step := range []string{"create", "chmod", "write", "fsync", "close", "rename", "fsync dir"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "file.json")
			if err := os.WriteFile(path, old, 0o600); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected " + step + " failure")
			hit := false
			fault := func(s string) error {
				if s == step {
					hit = true
					return injected
				}
				return nil
			}
			err := writeFile(path, []byte("new"), 0o600, fault)
			if !hit {
				t.Fatalf("step %q never ran", step)
			}
			if !errors.Is(err, injected) {
				t.Fatalf("err = %v, want the injected error", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), step) {
				t.Errorf("error %q does not name the path and the step", err)
			}
			got, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			want := old
			if step == "fsync dir" {
				// The rename already happened; only durability is in doubt.
				want = []byte("new")
			}
			if !bytes.Equal(got, want) {
				t.Errorf("file = %q, want %q", got, want)
			}
			if n := names(t, dir); !slices.Equal(n, []string{"file.json"}) {
				t.Errorf("directory holds %q, want only file.json", n)
			}
		})
	}
}

func TestEnsureDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // creates what is at dir
		wantErr  bool
		wantMode os.FileMode // checked when no error
	}{
		{
			name:     "missing with parents",
			setup:    func(t *testing.T, dir string) {},
			wantMode: 0o700,
		},
		{
			name:     "0755 is tightened",
			setup:    func(t *testing.T, dir string) { mkdir(t, dir, 0o755) },
			wantMode: 0o700,
		},
		{
			name:     "0770 is tightened",
			setup:    func(t *testing.T, dir string) { mkdir(t, dir, 0o770) },
			wantMode: 0o700,
		},
		{
			name:     "0700 stays",
			setup:    func(t *testing.T, dir string) { mkdir(t, dir, 0o700) },
			wantMode: 0o700,
		},
		{
			// Owner-only bits are the owner's business: not widened.
			name:     "0500 stays",
			setup:    func(t *testing.T, dir string) { mkdir(t, dir, 0o500) },
			wantMode: 0o500,
		},
		{
			name: "regular file",
			setup: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(dir, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: true,
		},
		{
			name: "symlink to a regular file",
			setup: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
					t.Fatal(err)
				}
				target := dir + ".target"
				if err := os.WriteFile(target, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, dir); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "a", "b", "connectord")
			tt.setup(t, dir)
			before, _ := os.ReadFile(dir) // regular-file cases: must not change
			err := EnsureDir(dir)
			if tt.wantErr {
				if !errors.Is(err, ErrUnsafeDir) {
					t.Fatalf("err = %v, want ErrUnsafeDir", err)
				}
				if !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), dir) {
					t.Errorf("error %q does not say %s is not a directory", err, dir)
				}
				if after, _ := os.ReadFile(dir); !bytes.Equal(before, after) {
					t.Errorf("the file at dir changed")
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureDir: %v", err)
			}
			fi, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !fi.IsDir() || fi.Mode().Perm() != tt.wantMode {
				t.Errorf("mode = %v, want dir %v", fi.Mode(), tt.wantMode)
			}
		})
	}
}

func TestEnsureDirOtherOwner(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("giving a directory to another uid needs root")
	}
	dir := filepath.Join(t.TempDir(), "theirs")
	mkdir(t, dir, 0o755)
	const other = 54321
	if err := os.Chown(dir, other, other); err != nil {
		t.Fatal(err)
	}
	err := EnsureDir(dir)
	if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "owned by uid 54321") {
		t.Fatalf("err = %v, want ErrUnsafeDir naming uid %d", err, other)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("someone else's directory was chmodded to %v", fi.Mode().Perm())
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Chmod after MkdirAll so umask does not decide the mode under test.
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

// A directory that is not connectord's own (a user pointed the store at
// ~/creds.json) keeps its mode: tightening $HOME would surprise the user.
func TestEnsureDirLeavesOtherDirsAlone(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "home")
	mkdir(t, dir, 0o755)
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode = %v, want 0755 left alone", fi.Mode().Perm())
	}
	if !OwnDir("/x/connectord") || !OwnDir("/tmp/connectord-0") || OwnDir("/home/me") {
		t.Fatal("OwnDir misclassifies")
	}
}
