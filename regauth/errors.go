package regauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinels that every *Error wraps as its Kind; callers branch on them
// with errors.Is. Their text is what a user reads after the host.
var (
	// ErrUnauthorized: the registry or its token server refused the
	// credentials (HTTP 401).
	ErrUnauthorized = errors.New("wrong username or password")
	// ErrDenied: the credentials were accepted but grant no access
	// (HTTP 403).
	ErrDenied = errors.New("access denied")
	// ErrUnreachable: no answer (DNS, refused connection, timeout).
	ErrUnreachable = errors.New("cannot reach the registry")
	// ErrTLS: the registry's certificate did not verify.
	ErrTLS = errors.New("TLS verification failed (for a private CA, point SSL_CERT_FILE at its certificate)")
	// ErrInsecure: the registry speaks plain HTTP, which is refused for a
	// registry that is not on loopback unless the caller allows it.
	ErrInsecure = errors.New("the registry answers only over plain HTTP, which is allowed for loopback registries or when insecure is set")
	// ErrNotRegistry: something answered, but not the registry v2 API.
	ErrNotRegistry = errors.New("no docker registry v2 API there")
	// ErrBadHost: the host is no valid registry host[:port].
	ErrBadHost = errors.New("not a valid registry host")
	// ErrProtocol: an answer this package cannot use (a server error, an
	// unknown auth scheme, a token response without a token).
	ErrProtocol = errors.New("unexpected answer from the registry")
)

// Error is what every function of this package returns on failure. Its
// text never holds a secret: Detail is what the registry said (error codes
// and messages), and Err is a network or TLS error whose URLs carry no
// query string.
type Error struct {
	Host   string // the registry host[:port] as given
	Kind   error  // one of the sentinels above
	Status int    // the HTTP status, 0 when there was no answer
	Detail string // the registry's or token server's own words, or ""
	Err    error  // the cause, or nil
}

func (e *Error) Error() string {
	var b strings.Builder
	if errors.Is(e.Kind, ErrUnauthorized) || errors.Is(e.Kind, ErrDenied) {
		fmt.Fprintf(&b, "authentication failed at %s: %v", e.Host, e.Kind)
	} else {
		fmt.Fprintf(&b, "%s: %v", e.Host, e.Kind)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " (registry said: %s)", e.Detail)
	}
	return b.String()
}

// Unwrap exposes Kind and Err to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// errPlainHTTP is returned by the scheme policy for a plain-HTTP request
// it refuses; classify turns it into ErrInsecure.
var errPlainHTTP = errors.New("plain HTTP refused")

// classify turns what go-containerregistry or net/http returned into an
// *Error. A failed ping can hold two errors (https, then the http
// fallback), so the order of the cases matters: a certificate problem
// explains everything after it; an answer from the registry beats a
// failed connection; a plain-HTTP refusal is the explanation only when
// nothing else went wrong. token marks errors from the token exchange, whose untyped
// errors may quote the token server's response body (which can hold a
// token): their text is dropped.
func classify(host string, err error, token bool) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	e := &Error{Host: host}
	var (
		terr    *transport.Error
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		hostErr x509.HostnameError
		verify  *tls.CertificateVerificationError
		opErr   *net.OpError
		dnsErr  *net.DNSError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		e.Kind, e.Err = ErrUnreachable, scrub(err)
	case errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostErr):
		e.Kind, e.Err = ErrTLS, scrub(err)
	case errors.As(err, &terr):
		e.Status, e.Detail = terr.StatusCode, diagnostics(terr)
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			e.Kind = ErrUnauthorized
		case http.StatusForbidden:
			e.Kind = ErrDenied
		case http.StatusNotFound:
			e.Kind = ErrNotRegistry
		default:
			e.Kind = ErrProtocol
		}
	case errors.As(err, &opErr) || errors.As(err, &dnsErr):
		e.Kind, e.Err = ErrUnreachable, scrub(err)
	case errors.Is(err, errPlainHTTP) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		e.Kind = ErrInsecure
	case token && strings.Contains(err.Error(), "www-authenticate"):
		// The registry's challenge names a realm go-containerregistry
		// refuses (a private address, plain HTTP for an HTTPS
		// registry): public text, and the explanation the user needs.
		e.Kind, e.Err = ErrProtocol, err
	case token:
		// Any other untyped error of the token exchange may quote what
		// the token server sent ("no token in bearer response: BODY") or
		// a redirect URL: say what happened without it.
		e.Kind, e.Detail = ErrProtocol, "the token server's answer could not be used (no token in it, or a refused redirect)"
	default:
		e.Kind, e.Err = ErrProtocol, scrub(err)
	}
	return e
}

// diagnostics renders a registry error's codes and messages, or its
// status when the body had none. The raw body is left out on purpose: it
// may be anything, an HTML page or a token.
func diagnostics(e *transport.Error) string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	parts := make([]string, 0, len(e.Errors))
	for _, d := range e.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// scrub drops the query string from a URL error's URL: token requests
// carry scope and service there, and a redirect could carry a signed URL.
func scrub(err error) error {
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		return err
	}
	u, perr := url.Parse(uerr.URL)
	if perr != nil || u.RawQuery == "" {
		return err
	}
	u.RawQuery = ""
	return &url.Error{Op: uerr.Op, URL: u.String(), Err: uerr.Err}
}
