// Package dockercfg edits a docker client config file (~/.docker/config.json)
// without losing what it does not understand.
//
// The file is shared with docker, crane, oras, regctl, skopeo, podman and
// whatever else the user runs, each of which may have put fields there
// (proxies, aliases, plugins, psFormat, currentContext, ...). So it is
// decoded into raw JSON per field, only credsStore, credHelpers and auths
// are touched, and everything else is written back byte for byte (modulo
// indentation). Writes are atomic, keep the file's mode, follow a symlink
// to the real file, and are preceded by a backup of the old bytes; a file
// in which nothing changed is never written.
package dockercfg

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/connectord/connectord/internal/atomicfile"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// ErrMalformed is wrapped by Load when the file is not a JSON object, or
// when credsStore, credHelpers or auths do not have docker's types.
var ErrMalformed = errors.New("malformed docker config")

// DockerHubKeys are the credHelpers keys that cover Docker Hub. docker,
// crane and everything else built on docker/cli's configfile look the
// helper up under docker's legacy index URL; skopeo, podman and buildah
// (containers/image) look it up under "docker.io" and do not normalise
// credHelpers keys. Both are needed for every client to reach the helper.
var DockerHubKeys = []string{resourceid.DockerHubKey, resourceid.DockerHubHost}

// File is a docker config file held in memory. Load one, change it with
// the Set and Take methods, then Save.
type File struct {
	// Path is the file as named by the caller; RealPath is where it is
	// read and written: Path with symlinks resolved.
	Path, RealPath string
	// Exists is false when there was no file: Save then creates it.
	Exists bool
	// Mode is the permission the file has, and keeps (0600 for a new one).
	Mode fs.FileMode

	orig    []byte
	fields  map[string]json.RawMessage
	helpers map[string]string
	auths   map[string]map[string]json.RawMessage
	changed bool
}

// Path returns the config.json that docker reads: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json.
func Path(getenv func(string) string) (string, error) {
	if dir := getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json"), nil
	}
	home := getenv("HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("dockercfg: finding the home directory: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Load reads the config file at path. A missing file is an empty config
// (Exists false); a file that is not a JSON object, or whose credsStore,
// credHelpers or auths have the wrong type, is an error wrapping
// ErrMalformed that says where, and never quotes the file: it may hold
// passwords.
func Load(path string) (*File, error) {
	f := &File{Path: path, RealPath: path, Mode: 0o600,
		fields: map[string]json.RawMessage{}, helpers: map[string]string{}, auths: map[string]map[string]json.RawMessage{}}
	// Write where a symlink points (dotfile managers link config.json
	// into a repository): renaming over the link would replace it with
	// a plain file and silently fork the user's configuration.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		f.RealPath = real
	}
	data, err := os.ReadFile(f.RealPath)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dockercfg: reading %s: %w", path, err)
	}
	fi, err := os.Stat(f.RealPath)
	if err != nil {
		return nil, fmt.Errorf("dockercfg: %w", err)
	}
	f.Exists, f.Mode, f.orig = true, fi.Mode().Perm(), data
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil // docker treats an empty file as an empty config
	}
	if err := json.Unmarshal(data, &f.fields); err != nil {
		return nil, malformed(path, data, "", err)
	}
	if f.fields == nil { // the file said null
		f.fields = map[string]json.RawMessage{}
	}
	if raw, ok := f.fields["credHelpers"]; ok {
		if err := json.Unmarshal(raw, &f.helpers); err != nil {
			return nil, malformed(path, data, "credHelpers (want an object of strings)", err)
		}
		if f.helpers == nil {
			f.helpers = map[string]string{}
		}
	}
	if raw, ok := f.fields["auths"]; ok {
		if err := json.Unmarshal(raw, &f.auths); err != nil {
			return nil, malformed(path, data, "auths (want an object of objects)", err)
		}
		if f.auths == nil {
			f.auths = map[string]map[string]json.RawMessage{}
		}
	}
	if raw, ok := f.fields["credsStore"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, malformed(path, data, "credsStore (want a string)", err)
		}
	}
	return f, nil
}

// malformed describes a decoding error by position, never by content.
func malformed(path string, data []byte, field string, err error) error {
	where := ""
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		where = fmt.Sprintf(" at line %d, column %d", line, col)
	}
	var te *json.UnmarshalTypeError
	switch {
	case field != "":
		return fmt.Errorf("dockercfg: %s: %w: %s has the wrong type", path, ErrMalformed, field)
	case errors.As(err, &te):
		return fmt.Errorf("dockercfg: %s: %w: the file is a JSON %s, not an object", path, ErrMalformed, te.Value)
	default:
		// A SyntaxError's text names at most one character of the file.
		return fmt.Errorf("dockercfg: %s: %w: invalid JSON%s: %w", path, ErrMalformed, where, err)
	}
}

func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Changed reports whether any method changed the config since Load.
func (f *File) Changed() bool { return f.changed }

// CredsStore returns the credsStore ("" when unset).
func (f *File) CredsStore() string {
	var s string
	_ = json.Unmarshal(f.fields["credsStore"], &s)
	return s
}

// SetCredsStore sets credsStore and returns the previous value and
// whether it changed.
func (f *File) SetCredsStore(helper string) (old string, changed bool) {
	old = f.CredsStore()
	if _, present := f.fields["credsStore"]; old == helper && present {
		return old, false
	}
	f.fields["credsStore"] = mustJSON(helper)
	f.changed = true
	return old, true
}

// CredHelpers returns a copy of credHelpers.
func (f *File) CredHelpers() map[string]string { return maps.Clone(f.helpers) }

// SetCredHelper points credHelpers[key] at helper and returns the
// previous helper ("" if none) and whether it changed.
func (f *File) SetCredHelper(key, helper string) (old string, changed bool) {
	old, ok := f.helpers[key]
	if ok && old == helper {
		return old, false
	}
	f.helpers[key] = helper
	f.fields["credHelpers"] = mustJSON(f.helpers)
	f.changed = true
	return old, true
}

// Credential is a plaintext credential found in auths.
type Credential struct {
	// Key is the auths key, as docker wrote it ("127.0.0.1:5000",
	// "https://index.docker.io/v1/").
	Key      string
	Username string
	// Secret is the password, or the identity token when Username is
	// "<token>" (docker's convention for identity tokens in helpers). It
	// masks itself in any print; the caller reveals it for the wire.
	Secret secret.Value
}

// TokenUsername is the username under which docker hands an identity
// token to a credential helper.
const TokenUsername = "<token>"

// credentialFields are the auths entry fields that carry a credential;
// TakeCredential removes them all, as docker does when it hands a login
// to a credsStore (a registrytoken is a short-lived token derived from
// the login). Everything else in an entry (email, serveraddress) is
// metadata and stays.
var credentialFields = []string{"auth", "username", "password", "identitytoken", "registrytoken"}

// Plaintext is one auths entry that carries a credential, decoded, or the
// reason it cannot be: Err is set (never quoting the secret) and Cred
// is then the zero value.
type Plaintext struct {
	Key  string
	Cred Credential
	Err  error
}

// ErrUnusable is wrapped by Plaintext.Err for an entry that carries
// something credential-like that cannot be moved to a helper.
var ErrUnusable = errors.New("cannot be moved to a credential helper")

// Plaintext returns the auths entries that hold a credential, sorted by
// key, decoded as docker does: an identitytoken wins (username
// "<token>"); else "auth" is base64 of user:password; else the username
// and password fields. Entries that hold nothing ({} as docker leaves
// them under a credsStore) are not listed.
func (f *File) Plaintext() []Plaintext {
	var out []Plaintext
	for _, key := range slices.Sorted(maps.Keys(f.auths)) {
		entry := f.auths[key]
		str := func(name string) string {
			var s string
			_ = json.Unmarshal(entry[name], &s)
			return s
		}
		p := Plaintext{Key: key}
		auth, user, pass, token := str("auth"), str("username"), str("password"), str("identitytoken")
		switch {
		case token != "":
			p.Cred = Credential{Key: key, Username: TokenUsername, Secret: secret.New(token)}
		case auth != "":
			u, pw, err := decodeAuth(auth)
			if err != nil {
				p.Err = err
			} else {
				p.Cred = Credential{Key: key, Username: u, Secret: secret.New(pw)}
			}
		case user != "" && pass != "":
			p.Cred = Credential{Key: key, Username: user, Secret: secret.New(pass)}
		case user != "" || pass != "":
			p.Err = fmt.Errorf("%w: it has a username or a password but not both", ErrUnusable)
		case str("registrytoken") != "":
			p.Err = fmt.Errorf("%w: it holds a registrytoken, which docker's helper protocol cannot carry", ErrUnusable)
		default:
			continue
		}
		out = append(out, p)
	}
	return out
}

// decodeAuth decodes an "auth" field: base64 of "user:password".
func decodeAuth(auth string) (user, pass string, err error) {
	b, err := base64.StdEncoding.DecodeString(auth)
	if err != nil {
		return "", "", fmt.Errorf("%w: its auth field is not valid base64", ErrUnusable)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("%w: its auth field is not base64 of user:password", ErrUnusable)
	}
	// docker trims NULs, which some old tools padded the password with.
	return user, strings.Trim(pass, "\x00"), nil
}

// TakeCredential removes the credential fields from auths[key], leaving
// the entry (and any metadata in it) in place: docker itself keeps an
// empty "auths" entry per registry under a credsStore, and lists the
// registries the user is logged in to from those keys. It reports
// whether anything was removed.
func (f *File) TakeCredential(key string) bool {
	entry, ok := f.auths[key]
	if !ok {
		return false
	}
	removed := false
	for _, name := range credentialFields {
		if _, ok := entry[name]; ok {
			delete(entry, name)
			removed = true
		}
	}
	if removed {
		f.fields["auths"] = mustJSON(f.auths)
		f.changed = true
	}
	return removed
}

// Marshal returns the config as Save would write it: tab-indented, as
// docker writes it, without HTML escaping (which would rewrite "<token>"
// and other fields' "<", ">", "&").
func (f *File) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(f.fields); err != nil {
		return nil, fmt.Errorf("dockercfg: encoding %s: %w", f.Path, err)
	}
	return buf.Bytes(), nil
}

// Save writes the config if anything changed, and returns the backup it
// made of the previous file ("" when there was none to back up or
// nothing changed).
//
// The old bytes go first to a backup next to the file
// (config.json.bak-<UTC time>, same mode), then the new config replaces
// the file atomically with its mode kept; a new file is 0600 in a
// directory created 0700. If the backup cannot be written, nothing is.
func (f *File) Save(now time.Time) (backup string, err error) {
	if !f.changed {
		return "", nil
	}
	data, err := f.Marshal()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(f.RealPath)
	if !f.Exists {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("dockercfg: creating %s: %w", dir, err)
		}
	} else {
		if backup, err = f.backup(now); err != nil {
			return "", err
		}
	}
	if err := atomicfile.WriteFile(f.RealPath, data, f.Mode); err != nil {
		return backup, fmt.Errorf("dockercfg: %w", err)
	}
	f.Exists, f.orig, f.changed = true, data, false
	return backup, nil
}

// backup writes the old bytes under a name no file has yet.
func (f *File) backup(now time.Time) (string, error) {
	base := f.RealPath + ".bak-" + now.UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", fmt.Errorf("dockercfg: no free backup name next to %s", f.RealPath)
		}
		name = fmt.Sprintf("%s.%d", base, i)
	}
	if err := atomicfile.WriteFile(name, f.orig, f.Mode); err != nil {
		return "", fmt.Errorf("dockercfg: backing up %s: %w", f.Path, err)
	}
	return name, nil
}

// HelperKeys returns the credHelpers keys that send registry id's
// clients to a helper: its host[:port], or both DockerHubKeys for Docker
// Hub. A repository path is dropped: no client looks helpers up per
// repository.
func HelperKeys(id resourceid.ID) []string {
	if id.IsDockerHub() {
		return slices.Clone(DockerHubKeys)
	}
	return []string{id.Host}
}

func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("dockercfg: encoding a string map cannot fail: " + err.Error())
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
