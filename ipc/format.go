package ipc

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Printing. Request and Response carry secrets as plain strings (they are
// the wire), so they implement fmt.Formatter: every verb, %v %+v %#v %s %q
// %x alike, prints Secret as "[REDACTED]" when it is set. Args and Data are
// printed as a byte count, because CLI ops may carry connector
// configuration, and that may hold secrets too. Value receivers, so that a
// Request printed by value is covered as well as a *Request.

const redacted = "[REDACTED]"

func mask(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer with Secret masked.
func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{V:%d Op:%s", r.V, r.Op)
	field(&b, "ServerURL", r.ServerURL)
	field(&b, "Username", r.Username)
	field(&b, "Secret", mask(r.Secret))
	field(&b, "Name", r.Name)
	if r.Args != nil {
		fmt.Fprintf(&b, " Args:<%d bytes>", len(r.Args))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString implements fmt.GoStringer with Secret masked.
func (r Request) GoString() string {
	return fmt.Sprintf("ipc.Request{V:%d, Op:%q, ServerURL:%q, Username:%q, Secret:%q, Name:%q, Args:%s}",
		r.V, string(r.Op), r.ServerURL, r.Username, mask(r.Secret), r.Name, rawGo(r.Args))
}

// Format implements fmt.Formatter so that no verb bypasses the masking.
func (r Request) Format(f fmt.State, verb rune) { format(f, verb, r.String, r.GoString) }

// String implements fmt.Stringer with Secret masked.
func (r Response) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{V:%d", r.V)
	if r.Error != nil {
		fmt.Fprintf(&b, " Error:{%s %q}", r.Error.Code, r.Error.Message)
	}
	field(&b, "Username", r.Username)
	field(&b, "Secret", mask(r.Secret))
	if r.Registries != nil {
		fmt.Fprintf(&b, " Registries:%v", r.Registries)
	}
	if r.Data != nil {
		fmt.Fprintf(&b, " Data:<%d bytes>", len(r.Data))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString implements fmt.GoStringer with Secret masked.
func (r Response) GoString() string {
	errGo := "(*ipc.Error)(nil)"
	if r.Error != nil {
		errGo = fmt.Sprintf("&ipc.Error{Code:%q, Message:%q}", string(r.Error.Code), r.Error.Message)
	}
	return fmt.Sprintf("ipc.Response{V:%d, Error:%s, Username:%q, Secret:%q, Registries:%#v, Data:%s}",
		r.V, errGo, r.Username, mask(r.Secret), r.Registries, rawGo(r.Data))
}

// Format implements fmt.Formatter so that no verb bypasses the masking.
func (r Response) Format(f fmt.State, verb rune) { format(f, verb, r.String, r.GoString) }

func format(f fmt.State, verb rune, str, goStr func() string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, goStr())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(str()))
	default:
		_, _ = io.WriteString(f, str())
	}
}

func field(b *strings.Builder, name, value string) {
	if value != "" {
		b.WriteString(" " + name + ":" + value)
	}
}

func rawGo(raw []byte) string {
	if raw == nil {
		return "json.RawMessage(nil)"
	}
	return "json.RawMessage{/* " + strconv.Itoa(len(raw)) + " bytes */}"
}
