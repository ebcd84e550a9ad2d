// Package secret holds credential material in a type that cannot leak by
// accident: every way Go has of printing, logging or marshalling a value
// shows a fixed mask instead of the contents. The only way to the bytes is
// Reveal, so `git grep Reveal` lists every place a secret leaves the type.
package secret

import (
	"fmt"
	"log/slog"
)

// Mask is what a secret looks like wherever it is printed.
const Mask = "[REDACTED]"

// Value is a secret string. The zero value is the empty secret.
//
// fmt cannot call methods on values in unexported struct fields: it prints
// them raw. A type that keeps a Value in an unexported field must
// therefore implement fmt.Formatter itself, printing a secret-free view
// through FormatRedacted.
type Value struct {
	// A pointer-free struct keeps Value comparable, which the daemon uses
	// to tell whether a connector's definition changed.
	s string
}

// New wraps s.
func New(s string) Value { return Value{s: s} }

// Reveal returns the secret itself. Call it only where the secret is
// handed to its legitimate consumer (the wire, a registry, a store file).
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return v.s == "" }

// String implements fmt.Stringer.
func (v Value) String() string { return v.mask() }

// GoString implements fmt.GoStringer so %#v masks too.
func (v Value) GoString() string { return `secret.Value("` + v.mask() + `")` }

// Format covers every verb, including %x and %q, which would otherwise
// bypass String.
func (v Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprint(f, v.GoString())
		return
	}
	_, _ = fmt.Fprint(f, v.mask())
}

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.mask()) }

// MarshalJSON masks the value; code that must serialise the secret (the
// wire protocol, the store file) copies Reveal() into a plain string field.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + v.mask() + `"`), nil }

// MarshalText masks the value for encoders that prefer TextMarshaler
// (TOML, YAML, XML).
func (v Value) MarshalText() ([]byte, error) { return []byte(v.mask()), nil }

func (v Value) mask() string {
	if v.s == "" {
		return ""
	}
	return Mask
}

// FormatRedacted prints view, a secret-free stand-in, with the flags the
// caller used. Types holding secrets in unexported fields call it from
// their Format method.
func FormatRedacted(f fmt.State, verb rune, view any) {
	if verb == 'v' && f.Flag('#') {
		_, _ = fmt.Fprintf(f, "%#v", view)
		return
	}
	if verb == 'v' && f.Flag('+') {
		_, _ = fmt.Fprintf(f, "%+v", view)
		return
	}
	_, _ = fmt.Fprintf(f, "%v", view)
}
