// Package atomicfile is the one way connectord writes a file that holds a
// secret. A reader (or a crash) sees either the old file or the new one,
// never a torn mix, and the new bytes never sit in a file another user can
// read, not even for the moment between create and chmod.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrUnsafeDir is wrapped by EnsureDir when the directory cannot be made
// private: it is not a directory, or another user owns it.
var ErrUnsafeDir = errors.New("unsafe directory")

// WriteFile writes data to path atomically: a temp file in the same
// directory (created 0600 via os.CreateTemp, then chmod perm), write,
// fsync, close, rename over path, fsync the directory.
//
// On any error before the rename the temp file is removed and the old file
// at path is untouched. Errors wrap the failing call (%w) and name the path.
// If only the final directory fsync fails, the new contents are already in
// place at path but may not survive a crash; that error is still returned
// because the caller was promised durability.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeFile(path, data, perm, noFault)
}

// noFault is the production fault hook: no step is made to fail.
func noFault(string) error { return nil }

// writeFile is WriteFile with a hook that the package's tests use to make a
// named step fail; steps that cannot be made to fail for real when the
// tests run as root (chmod, fsync, close, directory fsync) are covered that
// way. fault runs before the real call, so a faulted step never happens.
func writeFile(path string, data []byte, perm os.FileMode, fault func(step string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// The temp file lives in the target's directory because rename is only
	// atomic within one filesystem. The dot prefix keeps it out of casual
	// listings; the random suffix from CreateTemp keeps concurrent writers
	// of the same path apart.
	if err := fault("create"); err != nil {
		return fmt.Errorf("atomicfile: write %s: create temp file: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: create temp file: %w", path, err)
	}
	tmpName := tmp.Name()
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			_ = tmp.Close()
		}
		_ = os.Remove(tmpName)
	}()

	step := func(name string, call func() error) error {
		if err := fault(name); err != nil {
			return fmt.Errorf("atomicfile: write %s: %s: %w", path, name, err)
		}
		if err := call(); err != nil {
			return fmt.Errorf("atomicfile: write %s: %s: %w", path, name, err)
		}
		return nil
	}

	// Chmod through the open descriptor: the mode is exact (umask does not
	// apply to fchmod) and it is set before any secret byte is written.
	if err := step("chmod", func() error { return tmp.Chmod(perm) }); err != nil {
		return err
	}
	if err := step("write", func() error { _, err := tmp.Write(data); return err }); err != nil {
		return err
	}
	// Without this fsync a crash after the rename can leave path pointing
	// at an empty or partial file on filesystems that reorder metadata and
	// data (ext4 with delalloc, xfs).
	if err := step("fsync", tmp.Sync); err != nil {
		return err
	}
	if err := step("close", func() error { closed = true; return tmp.Close() }); err != nil {
		return err
	}
	if err := step("rename", func() error { return os.Rename(tmpName, path) }); err != nil {
		return err
	}
	// From here the temp name no longer exists; the deferred cleanup would
	// only remove nothing. Syncing the directory makes the rename itself
	// durable.
	if err := fault("fsync dir"); err != nil {
		return fmt.Errorf("atomicfile: write %s: fsync dir: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: write %s: fsync dir: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}

// EnsureDir creates dir (and parents) with mode 0700 when missing; when it
// exists and is owned by us with group/other bits set, it tightens it to
// 0700; when it is not a directory or owned by another uid, it returns an
// error wrapping ErrUnsafeDir that says which.
//
// A symlink to a directory is followed: the checks and the chmod apply to
// the directory it points at, which is the one the files land in.
func EnsureDir(dir string) error {
	fi, err := os.Stat(dir)
	created := false
	if errors.Is(err, os.ErrNotExist) {
		created = true
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("atomicfile: create dir %s: %w", dir, err)
		}
		// Stat again rather than trusting MkdirAll: it also succeeds when
		// someone else created the directory in between, and that directory
		// still has to pass the checks below.
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("atomicfile: stat dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("atomicfile: %s is not a directory (mode %v): %w", dir, fi.Mode().Type(), ErrUnsafeDir)
	}
	if uid, ok := owner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("atomicfile: dir %s is owned by uid %d, not by us (uid %d): %w", dir, uid, os.Geteuid(), ErrUnsafeDir)
	}
	// Tighten only connectord's own directories: a user who points the
	// store at ~/creds.json must not find $HOME (or, as root, /tmp)
	// chmodded to 0700. Elsewhere the 0600 file mode protects the file.
	if fi.Mode().Perm()&0o077 != 0 && (created || OwnDir(dir)) {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("atomicfile: tighten dir %s to 0700: %w", dir, err)
		}
	}
	return nil
}

// OwnDir reports whether dir is one of connectord's own directories
// (named connectord or connectord-*), which may be tightened to 0700.
func OwnDir(dir string) bool {
	base := filepath.Base(filepath.Clean(dir))
	return base == "connectord" || strings.HasPrefix(base, "connectord-")
}
