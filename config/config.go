// Package config finds, reads and strictly decodes connectord's TOML
// config. Decoding is strict in tailscale's conffile sense: unknown keys
// are errors, never ignored, and every problem is reported at once with
// the file, the line where it can be found, the connector and the field,
// so a user fixes a broken file in one pass. Turning entries into
// connectors (schema checks against each type's spec) is Build's job; it
// contacts nothing.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/connectord/connectord/connectors"
)

// CurrentVersion is the only config format version this build reads.
const CurrentVersion = 1

// ErrNoConfig means the file does not exist. The daemon treats that as an
// empty config; errors.Is(err, fs.ErrNotExist) holds too.
var ErrNoConfig = errors.New("no config file")

// Daemon holds the [daemon] table.
type Daemon struct {
	// Socket overrides the socket path; the --socket flag and
	// $CONNECTORD_SOCKET take precedence over it.
	Socket string
	// Store is the stored-credentials file.
	Store string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// StoreBackend is where stored credentials live: "file" (default),
	// "pass" or "secretservice".
	StoreBackend string
	// GetWait bounds how long a get waits for an expiring connector's
	// fetch when nothing valid is cached (0: the daemon's default, 10 s).
	GetWait time.Duration
}

// File is a decoded config file.
type File struct {
	Path       string
	Version    int
	Daemon     Daemon
	Connectors []connectors.Entry
	// Raw is the file's bytes: reload compares them to skip no-op writes.
	Raw []byte

	loc locator
}

// Problem is one thing wrong with the file.
type Problem struct {
	Line      int    `json:"line,omitempty"`
	Connector string `json:"connector,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Connector != "" {
		fmt.Fprintf(&b, "connector %q: ", p.Connector)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error lists every problem in a config file.
type Error struct {
	Path     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config %s:", e.Path)
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// quotedText matches what the TOML parser quotes from the file in its
// messages (`expected value but found "mysecret" instead`): on a
// password line that is the password, so it never reaches a message.
var quotedText = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)

func redactQuoted(msg string) string { return quotedText.ReplaceAllString(msg, `"[REDACTED]"`) }

// newError sorts problems by line so the message reads top to bottom.
func newError(path string, probs []Problem) *Error {
	slices.SortStableFunc(probs, func(a, b Problem) int { return a.Line - b.Line })
	return &Error{Path: path, Problems: probs}
}

// DefaultPath is $CONNECTORD_CONFIG, else
// $XDG_CONFIG_HOME/connectord/config.toml, else
// ~/.config/connectord/config.toml.
func DefaultPath(getenv func(string) string) string {
	if p := getenv("CONNECTORD_CONFIG"); p != "" {
		return p
	}
	return filepath.Join(xdgDir(getenv, "XDG_CONFIG_HOME", ".config"), "connectord", "config.toml")
}

// DefaultStorePath is $XDG_STATE_HOME/connectord/credentials.json, else
// ~/.local/state/connectord/credentials.json.
func DefaultStorePath(getenv func(string) string) string {
	return filepath.Join(StateDir(getenv), "credentials.json")
}

// StateDir is connectord's XDG state directory (store, daemon log).
func StateDir(getenv func(string) string) string {
	return filepath.Join(xdgDir(getenv, "XDG_STATE_HOME", filepath.Join(".local", "state")), "connectord")
}

func xdgDir(getenv func(string) string, env, fallback string) string {
	if d := getenv(env); d != "" && filepath.IsAbs(d) {
		return d
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, fallback)
}

// Load reads and decodes path. A missing file gives an error wrapping
// both ErrNoConfig and fs.ErrNotExist.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w at %s: %w", ErrNoConfig, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a config file's contents. path is used in messages only.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path, Version: CurrentVersion, Raw: data, loc: newLocator(data)}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Path: path, Problems: []Problem{{Line: pe.Position.Line, Message: redactQuoted(pe.Message)}}}
		}
		return nil, &Error{Path: path, Problems: []Problem{{Message: redactQuoted(err.Error())}}}
	}
	var probs []Problem
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := raw[k]
		switch k {
		case "version":
			n, ok := v.(int64)
			switch {
			case !ok:
				probs = append(probs, Problem{Line: f.loc.topKey(k), Field: k, Message: "must be an integer"})
			case n != CurrentVersion:
				probs = append(probs, Problem{Line: f.loc.topKey(k), Field: k, Message: fmt.Sprintf("unsupported version %d (this connectord reads version %d)", n, CurrentVersion)})
			default:
				f.Version = int(n)
			}
		case "daemon":
			probs = append(probs, f.decodeDaemon(v)...)
		case "connector":
			probs = append(probs, f.decodeConnectors(v)...)
		default:
			probs = append(probs, Problem{Line: f.loc.topKey(k), Field: k, Message: "unknown key (known: version, [daemon], [[connector]])"})
		}
	}
	if len(probs) > 0 {
		return nil, newError(path, probs)
	}
	return f, nil
}

func (f *File) decodeDaemon(v any) []Problem {
	t, ok := v.(map[string]any)
	if !ok {
		return []Problem{{Line: f.loc.topKey("daemon"), Field: "daemon", Message: "must be a table ([daemon])"}}
	}
	var probs []Problem
	for _, k := range slices.Sorted(maps.Keys(t)) {
		s, isStr := t[k].(string)
		line := f.loc.tableKey("daemon", k)
		if !isStr {
			probs = append(probs, Problem{Line: line, Field: "daemon." + k, Message: "must be a string"})
			continue
		}
		switch k {
		case "socket":
			f.Daemon.Socket = expandHome(s)
		case "store":
			f.Daemon.Store = expandHome(s)
		case "store_backend":
			if !slices.Contains([]string{"file", "pass", "secretservice"}, s) {
				probs = append(probs, Problem{Line: line, Field: "daemon.store_backend", Message: fmt.Sprintf("%q is not one of file, pass, secretservice", s)})
			}
			f.Daemon.StoreBackend = s
		case "get_wait":
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 || d > 25*time.Second {
				// Above 25 s the helper's own 30 s request timeout would
				// fire first and the client would never hear the reason.
				probs = append(probs, Problem{Line: line, Field: "daemon.get_wait", Message: fmt.Sprintf("%q must be a duration between 0s and 25s, such as \"10s\"", s)})
			}
			f.Daemon.GetWait = d
		case "log_level":
			if !slices.Contains([]string{"debug", "info", "warn", "error"}, s) {
				probs = append(probs, Problem{Line: line, Field: "daemon.log_level", Message: fmt.Sprintf("%q is not one of debug, info, warn, error", s)})
			}
			f.Daemon.LogLevel = s
		default:
			probs = append(probs, Problem{Line: line, Field: "daemon." + k, Message: "unknown key (known: socket, store, store_backend, get_wait, log_level)"})
		}
	}
	return probs
}

var connectorKeys = []string{"name", "type", "auth_method", "resource_type", "resource_id", "expires_at", "expiration_seconds", "expires_skew_tolerance", "config"}

func (f *File) decodeConnectors(v any) []Problem {
	list, ok := v.([]map[string]any)
	if !ok {
		return []Problem{{Line: f.loc.topKey("connector"), Field: "connector", Message: "must be an array of tables ([[connector]])"}}
	}
	var probs []Problem
	for i, t := range list {
		e := connectors.Entry{Config: map[string]any{}}
		name, _ := t["name"].(string)
		bad := func(field, format string, args ...any) {
			probs = append(probs, Problem{Line: f.loc.connectorKey(i, field), Connector: displayName(name, i), Field: field, Message: fmt.Sprintf(format, args...)})
		}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			val := t[k]
			switch k {
			case "name", "type", "auth_method", "resource_type", "resource_id":
				s, ok := val.(string)
				if !ok {
					bad(k, "must be a string")
					continue
				}
				switch k {
				case "name":
					e.Name = s
				case "type":
					e.Type = s
				case "auth_method":
					e.AuthMethod = s
				case "resource_type":
					e.ResourceType = s
				default:
					e.ResourceID = s
				}
			case "expires_at":
				switch tv := val.(type) {
				case time.Time:
					e.ExpiresAt = &tv
				case string:
					ts, err := time.Parse(time.RFC3339, tv)
					if err != nil {
						bad(k, "must be an RFC 3339 date-time such as 2026-12-31T23:59:00Z")
						continue
					}
					e.ExpiresAt = &ts
				default:
					bad(k, "must be a date-time")
				}
			case "expiration_seconds", "expires_skew_tolerance":
				n, ok := val.(int64)
				if !ok {
					bad(k, "must be an integer number of seconds")
					continue
				}
				if k == "expiration_seconds" {
					e.ExpirationSeconds = &n
				} else {
					e.ExpiresSkewTolerance = &n
				}
			case "config":
				c, ok := val.(map[string]any)
				if !ok {
					bad(k, "must be a table ([connector.config])")
					continue
				}
				e.Config = c
			default:
				bad(k, "unknown key (known: %s)", strings.Join(connectorKeys, ", "))
			}
		}
		f.Connectors = append(f.Connectors, e)
	}
	return probs
}

func displayName(name string, i int) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("#%d", i+1)
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}
