package connectors

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/connectord/connectord/secret"
)

// Config is an instance's validated configuration: every field the auth
// method declares, with defaults applied, secret fields as secret.Value.
// It is immutable after construction.
type Config struct {
	values  map[string]any
	secrets map[string]secret.Value
	// sources records where a value was read from ("env:VAR",
	// "file:/path") so describe can say so and reload can watch files.
	sources map[string]string
}

// Format prints the redacted view: Config keeps secrets in unexported
// fields, which fmt would otherwise print raw.
func (c Config) Format(f fmt.State, verb rune) { secret.FormatRedacted(f, verb, c.Redacted()) }

// String returns a non-secret string field ("" when unset).
func (c Config) String(name string) string { s, _ := c.values[name].(string); return s }

// Secret returns a secret field (zero when unset).
func (c Config) Secret(name string) secret.Value { return c.secrets[name] }

// Int returns an int field.
func (c Config) Int(name string) int64 { n, _ := c.values[name].(int64); return n }

// Bool returns a bool field.
func (c Config) Bool(name string) bool { b, _ := c.values[name].(bool); return b }

// Duration returns a duration field.
func (c Config) Duration(name string) time.Duration { d, _ := c.values[name].(time.Duration); return d }

// StringList returns a copy of a list field.
func (c Config) StringList(name string) []string {
	l, _ := c.values[name].([]string)
	return slices.Clone(l)
}

// StringMap returns a copy of a map field.
func (c Config) StringMap(name string) map[string]string {
	m, _ := c.values[name].(map[string]string)
	return maps.Clone(m)
}

// Has reports whether the field has a value (given or defaulted).
func (c Config) Has(name string) bool {
	_, ok := c.values[name]
	_, sok := c.secrets[name]
	return ok || sok
}

// Source says where a field's value came from: "env:VAR", "file:PATH",
// or "" for a literal in the config.
func (c Config) Source(name string) string { return c.sources[name] }

// Files lists the files that secrets were read from, for reload watching.
func (c Config) Files() []string {
	var out []string
	for _, s := range c.sources {
		if p, ok := strings.CutPrefix(s, "file:"); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Redacted returns every field for display: non-secret values as they
// are, secret ones as the mask (or their env/file source).
func (c Config) Redacted() map[string]any {
	out := make(map[string]any, len(c.values)+len(c.secrets))
	for k, v := range c.values {
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		out[k] = v
	}
	for k, v := range c.secrets {
		if v.IsZero() {
			out[k] = ""
			continue
		}
		if src := c.sources[k]; src != "" {
			out[k] = secret.Mask + " (" + src + ")"
			continue
		}
		out[k] = secret.Mask
	}
	return out
}

// Revealed returns every field with secrets in clear, for
// `describe --show-secrets` only.
func (c Config) Revealed() map[string]any {
	out := c.Redacted()
	for k, v := range c.secrets {
		out[k] = v.Reveal()
	}
	return out
}

// Equal reports whether two configs hold the same values, secrets
// included. Reload uses it to keep a connector whose definition did not
// change.
func (c Config) Equal(o Config) bool {
	if !maps.Equal(c.secrets, o.secrets) || !maps.Equal(c.sources, o.sources) || len(c.values) != len(o.values) {
		return false
	}
	for k, v := range c.values {
		w, ok := o.values[k]
		if !ok || fmt.Sprint(v) != fmt.Sprint(w) {
			return false
		}
	}
	return true
}

// Resolver reads the environment and files that `{ env = "VAR" }` and
// `{ file = "/path" }` values refer to. Injected so tests and fuzzing do
// not depend on the real environment.
type Resolver interface {
	LookupEnv(name string) (string, bool)
	ReadFile(path string) ([]byte, error)
}

// OSResolver resolves against the process environment and file system.
type OSResolver struct{}

// LookupEnv implements Resolver.
func (OSResolver) LookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

// ReadFile implements Resolver.
func (OSResolver) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// Problem is one thing wrong with a connector entry.
type Problem struct {
	// Field is the key path inside the entry ("resource_id",
	// "config.password"); empty for the entry as a whole.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// ErrUnknownType is wrapped by a ValidationError naming a connector type
// the registry does not know.
var ErrUnknownType = errors.New("unknown connector type")

// ValidationError lists every problem found in one connector entry.
type ValidationError struct {
	Connector string
	Problems  []Problem
	// unknownType is set when the type itself was unknown, so errors.Is
	// can tell that case apart from schema errors.
	unknownType bool
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "connector %q: ", e.Connector)
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Is lets errors.Is(err, ErrUnknownType) work.
func (e *ValidationError) Is(target error) bool { return target == ErrUnknownType && e.unknownType }

// MarkUnknownType flags the error as an unknown-type error.
func (e *ValidationError) MarkUnknownType() { e.unknownType = true }

// DecodeConfig checks raw config values (as decoded from TOML: string,
// int64, bool, []any, map[string]any) against the auth method's schema
// and builds a Config. Every problem is returned, each with its field.
// Values of string fields may be given as { env = "VAR" } or
// { file = "/path" }; those are resolved here, and only the variable's
// name or the file's path ever appears in a problem.
func DecodeConfig(am *AuthMethodSpec, raw map[string]any, res Resolver) (Config, []Problem) {
	c := Config{values: map[string]any{}, secrets: map[string]secret.Value{}, sources: map[string]string{}}
	var probs []Problem
	bad := func(field, format string, args ...any) {
		probs = append(probs, Problem{Field: "config." + field, Message: fmt.Sprintf(format, args...)})
	}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		if _, ok := am.Field(k); !ok {
			bad(k, "unknown field for auth method %q (known: %s)", am.ID, strings.Join(fieldNames(am), ", "))
		}
	}
	for _, f := range am.Fields {
		v, present := raw[f.Name]
		if !present {
			if f.Required {
				bad(f.Name, "required field is missing")
			} else if f.Default != nil {
				c.values[f.Name] = f.Default
			}
			continue
		}
		if f.Type == FieldString {
			s, src, err := resolveString(v, res)
			if err != nil {
				bad(f.Name, "%v", err)
				continue
			}
			if f.Required && s == "" {
				bad(f.Name, "must not be empty")
				continue
			}
			if src != "" {
				c.sources[f.Name] = src
			}
			if f.Secret {
				c.secrets[f.Name] = secret.New(s)
			} else {
				c.values[f.Name] = s
			}
			continue
		}
		val, err := convert(f.Type, v)
		if err != nil {
			bad(f.Name, "%v", err)
			continue
		}
		c.values[f.Name] = val
	}
	return c, probs
}

func fieldNames(am *AuthMethodSpec) []string {
	var n []string
	for _, f := range am.Fields {
		n = append(n, f.Name)
	}
	return n
}

// typeName describes a TOML value without showing it: values may be
// secrets typed into the wrong place.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

func resolveString(v any, res Resolver) (val, source string, err error) {
	switch t := v.(type) {
	case string:
		return t, "", nil
	case map[string]any:
		if len(t) != 1 {
			return "", "", errors.New(`a table value must be exactly { env = "VAR" } or { file = "/path" }`)
		}
		if name, ok := t["env"].(string); ok {
			s, found := res.LookupEnv(name)
			if !found {
				return "", "", fmt.Errorf("environment variable %s is not set", name)
			}
			return s, "env:" + name, nil
		}
		if path, ok := t["file"].(string); ok {
			b, err := res.ReadFile(path)
			if err != nil {
				// Name the path once; an fs.PathError would repeat it.
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return "", "", fmt.Errorf("reading %s: %w", path, err)
			}
			// Files written by editors or `echo` end in a newline that is
			// never part of a password.
			return strings.TrimRight(string(b), "\r\n"), "file:" + path, nil
		}
		return "", "", errors.New(`a table value must be exactly { env = "VAR" } or { file = "/path" }`)
	default:
		return "", "", fmt.Errorf("must be a string, got %s", typeName(v))
	}
}

func convert(t FieldType, v any) (any, error) {
	switch t {
	case FieldInt:
		if n, ok := v.(int64); ok {
			return n, nil
		}
	case FieldBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case FieldDuration:
		if s, ok := v.(string); ok {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("must be a positive duration such as \"30s\", got %q", s)
			}
			return d, nil
		}
	case FieldStringList:
		if l, ok := v.([]any); ok {
			out := make([]string, 0, len(l))
			for i, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("element %d must be a string, got %s", i, typeName(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
	case FieldStringMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]string, len(m))
			for k, e := range m {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("key %q must be a string, got %s", k, typeName(e))
				}
				out[k] = s
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("must be %s, got %s", describeType(t), typeName(v))
}

func describeType(t FieldType) string {
	switch t {
	case FieldInt:
		return "an integer"
	case FieldBool:
		return "a boolean"
	case FieldDuration:
		return "a duration string"
	case FieldStringList:
		return "an array of strings"
	case FieldStringMap:
		return "a table of strings"
	default:
		return "a string"
	}
}
