package ipc

import "fmt"

// Code classifies an error on the wire. Clients branch on it with
// errors.Is and the sentinels below, never on Message.
type Code string

// Error codes.
const (
	// CodeNotFound: no credentials (or no connector) for the key. The
	// helper turns it into docker's "credentials not found" answer.
	CodeNotFound Code = "not_found"
	// CodeInvalid: the request (or a message) is malformed or unacceptable.
	CodeInvalid Code = "invalid"
	// CodeConflict: the request contradicts the current state.
	CodeConflict Code = "conflict"
	// CodeUnavailable: the daemon cannot answer now (busy, shutting down,
	// an upstream is unreachable); retrying later may help.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: a bug or an unexpected failure in the daemon.
	CodeInternal Code = "internal"
	// CodeVersion: the peers speak different protocol versions.
	CodeVersion Code = "version"
	// CodeForbidden: the connecting user may not use this daemon; for
	// OpVerify, the registry refused the connector's credentials.
	CodeForbidden Code = "forbidden"
)

// Error is an error as carried on the wire. It is also a Go error: a
// response that carries one is returned by ipc/client as that *Error, and
// errors.Is matches it against the sentinels by Code.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Sentinels for errors.Is. Any *Error with the same Code matches, whatever
// its Message.
var (
	ErrNotFound    = &Error{Code: CodeNotFound}
	ErrInvalid     = &Error{Code: CodeInvalid}
	ErrConflict    = &Error{Code: CodeConflict}
	ErrUnavailable = &Error{Code: CodeUnavailable}
	ErrInternal    = &Error{Code: CodeInternal}
	ErrVersion     = &Error{Code: CodeVersion}
	ErrForbidden   = &Error{Code: CodeForbidden}
)

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the message. The sentinels have none, and a peer may send
// none, so it falls back to the code: an error must never print as "".
func (e *Error) Error() string {
	switch {
	case e == nil:
		return "<nil>"
	case e.Message != "":
		return e.Message
	case e.Code != "":
		return string(e.Code)
	default:
		return "connectord: error without code or message"
	}
}

// Is reports whether target is an *Error with the same Code, which is what
// makes errors.Is(err, ipc.ErrNotFound) work for any not-found message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && e != nil && t != nil && t.Code == e.Code
}
