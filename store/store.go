// Package store keeps the credentials that arrive through the credential
// helper's `store` verb (docker login) across daemon restarts.
//
// The store is one JSON file, mode 0600 in a 0700 directory, rewritten
// whole through internal/atomicfile on every change, so a crash leaves
// either the old or the new set of credentials, never a torn file. Keys are
// the canonical registry keys from package resourceid; the store treats
// them as opaque strings and never canonicalises them itself.
//
// Secrets are secret.Value in memory. They are revealed only to serialise
// the file, and nothing read from the file (keys, usernames, secrets) is
// ever put into an error by this package, except the key a caller passed
// to Get, Put or Delete.
package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/connectord/connectord/internal/atomicfile"
	"github.com/connectord/connectord/secret"
)

// MaxKeyLen is the longest key, in bytes, that Put accepts. Canonical
// registry keys are a host, a port and a repository path; this bound only
// keeps a runaway caller from bloating the file.
const MaxKeyLen = 4096

// formatVersion is the "version" this package writes and the only one it
// reads. A file with another version is treated as corrupt rather than
// guessed at: a newer daemon's file could mean something different.
const formatVersion = 1

// fileMode is the mode of the store file and of its corrupt backups.
const fileMode os.FileMode = 0o600

// backupTimeFormat is the UTC timestamp suffix of a corrupt file's backup.
const backupTimeFormat = "20060102T150405Z"

// ErrNotFound is wrapped by Get when the key has no credential.
var ErrNotFound = errors.New("credential not found")

// ErrInvalid is wrapped by Put when the key or credential cannot be stored.
var ErrInvalid = errors.New("invalid credential")

// Credential is one stored login.
type Credential struct {
	// Username is stored exactly as given, including docker's "<token>"
	// marker for identity tokens.
	Username string
	Secret   secret.Value
	// UpdatedAt is when the credential was stored, in UTC. Put fills it in
	// when it is zero.
	UpdatedAt time.Time
}

// Entry is a key and its credential, as returned by List.
type Entry struct {
	Key        string
	Credential Credential
}

// CorruptError reports a store file that could not be parsed. Open moved
// it aside to Backup and started empty.
type CorruptError struct {
	Path   string // the store file, which no longer exists
	Backup string // where the unparsable file now is, byte for byte
	Err    error  // what was wrong; never quotes the file's contents
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: %s is corrupt (%v); moved it to %s and started empty", e.Path, e.Err, e.Backup)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// File is a credential store backed by one file. It is safe for concurrent
// use. Create it with Open; the zero File is not usable.
type File struct {
	path string

	// creds is the current state. The map it points to is never modified:
	// a change builds a new map, writes it to disk and only then swaps the
	// pointer. Readers therefore never wait for an fsync, and a failed
	// write leaves memory exactly as it was, matching the disk.
	creds atomic.Pointer[map[string]Credential]

	// writing serialises Put and Delete so that the disk sees changes in
	// the order memory does. It is a channel rather than a mutex so a
	// caller waiting behind a slow fsync can give up with its context.
	writing chan struct{}
}

// Open loads the store at path. A missing file is an empty store; the file
// is created by the first Put. The directory is created, or tightened to
// 0700, by atomicfile.EnsureDir, and a store file readable by group or
// other is tightened to 0600 before it is read.
//
// A file that does not parse, has an unknown "version" or holds an entry
// Put would reject is renamed to path+".corrupt-"+UTC timestamp
// (20060102T150405Z; a ".N" suffix is added if that name is taken), and
// Open returns a usable empty *File together with a *CorruptError.
// Any other error returns a nil *File.
func Open(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	if err := atomicfile.EnsureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	f := &File{path: path, writing: make(chan struct{}, 1)}
	empty := map[string]Credential{}

	data, err := readPrivate(path)
	if errors.Is(err, os.ErrNotExist) {
		f.creds.Store(&empty)
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	creds, perr := decode(data)
	if perr == nil {
		f.creds.Store(&creds)
		return f, nil
	}
	backup, err := moveAside(path)
	if err != nil {
		// Carrying on would let the next Put overwrite the only copy of
		// whatever the file held, so refuse instead.
		return nil, fmt.Errorf("store: open %s: file is corrupt (%v) and could not be moved aside: %w", path, perr, err)
	}
	f.creds.Store(&empty)
	return f, &CorruptError{Path: path, Backup: backup, Err: perr}
}

// readPrivate reads path after making sure only its owner can read it. The
// mode is fixed through the open descriptor so the check and the chmod
// apply to the same file even if path is replaced meanwhile.
func readPrivate(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (mode %v)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := fh.Chmod(fileMode); err != nil {
			return nil, fmt.Errorf("tighten to %v: %w", fileMode, err)
		}
	}
	return io.ReadAll(fh)
}

// moveAside renames a corrupt store file out of the way and returns the
// new name. It never replaces an existing file: an earlier backup made in
// the same second is evidence too.
func moveAside(path string) (string, error) {
	base := path + ".corrupt-" + time.Now().UTC().Format(backupTimeFormat)
	for i := 0; i < 100; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s.%d", base, i)
		}
		// Lstat then rename can race only with another process doing the
		// same in the same second in our own 0700 directory.
		if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
			if err != nil {
				return "", err
			}
			continue
		}
		if err := os.Rename(path, name); err != nil {
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("no free backup name after %s", base)
}

// Path returns the path the store was opened with.
func (f *File) Path() string { return f.path }

// Get returns the credential stored under key, or an error wrapping
// ErrNotFound that names the key.
func (f *File) Get(ctx context.Context, key string) (Credential, error) {
	if err := ctx.Err(); err != nil {
		return Credential{}, err
	}
	c, ok := (*f.creds.Load())[key]
	if !ok {
		return Credential{}, fmt.Errorf("store: %q: %w", key, ErrNotFound)
	}
	return c, nil
}

// Put stores c under key, replacing any credential there, and returns once
// the file on disk holds it. A zero c.UpdatedAt is set to the current
// time; UpdatedAt is kept in UTC. Empty keys, keys longer than MaxKeyLen,
// empty usernames and strings that are not valid UTF-8 (JSON cannot carry
// them unchanged) are rejected with an error wrapping ErrInvalid. If the
// write fails, the store is unchanged in memory as on disk.
func (f *File) Put(ctx context.Context, key string, c Credential) error {
	if err := validate(key, c); err != nil {
		return err
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now()
	}
	// UTC() also drops the monotonic clock reading, so what Put keeps in
	// memory compares equal to what Open reads back.
	c.UpdatedAt = c.UpdatedAt.UTC()
	return f.update(ctx, func(m map[string]Credential) bool {
		m[key] = c
		return true
	})
}

// Delete removes the credential under key and returns once the file on
// disk no longer holds it. Deleting a missing key returns (false, nil)
// and writes nothing. If the write fails, the credential stays, in memory
// as on disk, and existed is false.
func (f *File) Delete(ctx context.Context, key string) (existed bool, err error) {
	err = f.update(ctx, func(m map[string]Credential) bool {
		if _, ok := m[key]; !ok {
			return false
		}
		delete(m, key)
		existed = true
		return true
	})
	if err != nil {
		return false, err
	}
	return existed, nil
}

// List returns every stored credential, sorted by key.
func (f *File) List(ctx context.Context) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := *f.creds.Load()
	out := make([]Entry, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, Entry{Key: k, Credential: m[k]})
	}
	return out, nil
}

// update applies change to a copy of the current state, writes the copy
// and publishes it only when the write succeeded. change reports whether
// it changed anything; if not, nothing is written.
func (f *File) update(ctx context.Context, change func(map[string]Credential) bool) error {
	select {
	case f.writing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.writing }()
	// Re-check after waiting: the caller may have given up while the lock
	// was free but the select picked the send.
	if err := ctx.Err(); err != nil {
		return err
	}
	next := maps.Clone(*f.creds.Load())
	if !change(next) {
		return nil
	}
	data, err := encode(next)
	if err != nil {
		return fmt.Errorf("store: write %s: %w", f.path, err)
	}
	// EnsureDir again: the daemon lives for days and the directory may
	// have been removed (or loosened) under it since Open.
	if err := atomicfile.EnsureDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("store: write %s: %w", f.path, err)
	}
	if err := atomicfile.WriteFile(f.path, data, fileMode); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f.creds.Store(&next)
	return nil
}

func validate(key string, c Credential) error {
	switch {
	case key == "":
		return fmt.Errorf("store: put: empty key: %w", ErrInvalid)
	case len(key) > MaxKeyLen:
		// Not quoted: a key this long is not worth echoing.
		return fmt.Errorf("store: put: key is %d bytes, more than %d: %w", len(key), MaxKeyLen, ErrInvalid)
	case !utf8.ValidString(key):
		return fmt.Errorf("store: put %q: key is not valid UTF-8: %w", key, ErrInvalid)
	case c.Username == "":
		return fmt.Errorf("store: put %q: empty username: %w", key, ErrInvalid)
	case !utf8.ValidString(c.Username):
		return fmt.Errorf("store: put %q: username is not valid UTF-8: %w", key, ErrInvalid)
	case !utf8.ValidString(c.Secret.Reveal()):
		return fmt.Errorf("store: put %q: secret is not valid UTF-8: %w", key, ErrInvalid)
	case c.UpdatedAt.UTC().Year() < 0 || c.UpdatedAt.UTC().Year() > 9999:
		// RFC 3339 has four-digit years; a file written with another would
		// fail to load and be moved aside as corrupt.
		return fmt.Errorf("store: put %q: updated_at year %d is outside 0-9999: %w", key, c.UpdatedAt.UTC().Year(), ErrInvalid)
	}
	return nil
}

// diskFile is the on-disk document. It uses plain strings because
// secret.Value deliberately marshals as a mask.
type diskFile struct {
	Version     int                       `json:"version"`
	Credentials map[string]diskCredential `json:"credentials"`
}

type diskCredential struct {
	Username  string `json:"username"`
	Secret    string `json:"secret"`
	UpdatedAt string `json:"updated_at,omitempty"`
}

func encode(m map[string]Credential) ([]byte, error) {
	doc := diskFile{Version: formatVersion, Credentials: make(map[string]diskCredential, len(m))}
	for k, c := range m {
		dc := diskCredential{Username: c.Username, Secret: c.Secret.Reveal()}
		if !c.UpdatedAt.IsZero() {
			dc.UpdatedAt = c.UpdatedAt.UTC().Format(time.RFC3339Nano)
		}
		doc.Credentials[k] = dc
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Keep "<token>" readable in the file instead of "\u003ctoken\u003e".
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		// Only reachable through a bug; the message of a json error from
		// marshalling strings does not quote them.
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}

// decode parses a store file. Its errors describe the problem by position
// and kind only: encoding/json's own messages quote pieces of the input
// (unknown field names, invalid characters, map keys in type errors),
// and the input is a file full of secrets.
func decode(data []byte) (map[string]Credential, error) {
	var doc diskFile
	dec := json.NewDecoder(bytes.NewReader(data))
	// The file is machine-written; anything unexpected means it is not
	// what this version wrote, and rewriting it would silently drop the
	// unknown parts.
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, describeJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON document at byte %d", dec.InputOffset())
	}
	if doc.Version != formatVersion {
		return nil, fmt.Errorf("unknown version %d, want %d", doc.Version, formatVersion)
	}
	out := make(map[string]Credential, len(doc.Credentials))
	for k, dc := range doc.Credentials {
		// Entries are not named: the key is file content.
		switch {
		case k == "":
			return nil, errors.New("an entry has an empty key")
		case len(k) > MaxKeyLen:
			return nil, fmt.Errorf("an entry has a key of %d bytes, more than %d", len(k), MaxKeyLen)
		case dc.Username == "":
			return nil, errors.New("an entry has an empty username")
		}
		c := Credential{Username: dc.Username, Secret: secret.New(dc.Secret)}
		if dc.UpdatedAt != "" {
			t, err := time.Parse(time.RFC3339Nano, dc.UpdatedAt)
			if err != nil {
				return nil, errors.New("an entry has an updated_at that is not an RFC 3339 time")
			}
			c.UpdatedAt = t.UTC()
		}
		out[k] = c
	}
	return out, nil
}

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return errors.New("empty file")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("truncated JSON")
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		// Not typ.Value: for numbers it carries the literal, and not
		// typ.Field: it can carry a map key.
		return fmt.Errorf("value of the wrong JSON type at byte %d", typ.Offset)
	default:
		return errors.New("not a store document (unknown field or wrong structure)")
	}
}
