// Package regauth talks to a docker registry the way a client does before
// a pull, and the way `docker login` does: it pings GET /v2/, reads the
// WWW-Authenticate challenge, then authenticates with Basic auth or with
// the bearer-token flow the challenge asks for, and can list the
// registry's catalog.
//
// The protocol work is go-containerregistry's (pkg/v1/remote/transport:
// ping, challenge parsing, token exchange including the OAuth2
// grant_type=refresh_token flow for identity tokens, a realm check that
// keeps passwords from being sent to private addresses, error
// diagnostics; pkg/v1/remote: the paginated catalog). That is the library
// crane is built on, so verify sees a registry exactly as crane will.
// docker's own github.com/docker/docker/registry.Service.Auth was the
// other candidate: it does docker's login including the refresh token,
// but it builds its own HTTP transport (no injected client), turns TLS
// verification off for every registry it treats as insecure (127.0.0.0/8
// by default), reads /etc/docker/certs.d, lists no catalog, and pulls in
// some thirty modules (prometheus, opentelemetry, logrus, gorilla/mux).
//
// One step go-containerregistry does not offer is asking the token server
// for a refresh token (offline_token=true, docker's "identity token"); see
// Login for how it is done here.
//
// Plain HTTP: every request goes through a scheme policy. HTTPS is tried
// first; plain HTTP is used only for a loopback registry (127.0.0.0/8,
// ::1, localhost, which docker also treats as insecure by default) or when
// Options.Insecure is set. Unlike docker's insecure registries, TLS
// certificates are always verified: a private CA belongs in SSL_CERT_FILE,
// which Go's system root pool reads (once per process).
//
// Nothing here logs, and no error carries a secret (see Error).
package regauth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/connectord/connectord/internal/version"
	"github.com/connectord/connectord/secret"
)

// TokenUsername is the username docker stores with an identity token (an
// OAuth2 refresh token) instead of a password.
const TokenUsername = "<token>"

// ClientID names connectord to token servers (the OAuth2 client_id).
const ClientID = "connectord"

// Auth is the authentication a registry asked for.
type Auth string

// The auth schemes a registry's /v2/ challenge can ask for.
const (
	AuthNone   Auth = "none"   // /v2/ answered 200 without credentials
	AuthBasic  Auth = "basic"  // Basic auth on every request (htpasswd)
	AuthBearer Auth = "bearer" // tokens from the token server named in the challenge
)

// Options configures a call.
type Options struct {
	// Client supplies the HTTP transport; nil means NewClient(). Only its
	// Transport is used: go-containerregistry makes its own http.Clients
	// around it (with its own redirect checks), so the caller's context,
	// not Client.Timeout, bounds a call.
	Client *http.Client
	// Insecure allows plain HTTP to a registry that is not on loopback.
	// Certificates are verified all the same.
	Insecure bool
}

// NewClient returns the HTTP client used when Options.Client is nil:
// http.DefaultTransport's settings (proxy from the environment, system
// root CAs, which honour SSL_CERT_FILE and SSL_CERT_DIR).
func NewClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// Credentials are what a docker client sends: a username and password,
// or TokenUsername and an identity token. The zero value is anonymous.
type Credentials struct {
	Username string
	Secret   secret.Value
}

// IsIdentityToken reports whether c holds an identity token.
func (c Credentials) IsIdentityToken() bool { return c.Username == TokenUsername }

// Format masks the secret (secret.Value does too; this keeps %#v of the
// struct from printing its unexported field).
func (c Credentials) Format(f fmt.State, verb rune) {
	secret.FormatRedacted(f, verb, struct {
		Username string
		Secret   secret.Value
	}{c.Username, c.Secret})
}

func (c Credentials) authenticator() authn.Authenticator {
	switch {
	case c.IsIdentityToken():
		return authn.FromConfig(authn.AuthConfig{IdentityToken: c.Secret.Reveal()})
	case c.Username == "" && c.Secret.IsZero():
		return authn.Anonymous
	default:
		return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Secret.Reveal()})
	}
}

// Endpoint is what the ping found out about a registry.
type Endpoint struct {
	Host string `json:"host"` // host[:port] as given
	URL  string `json:"url"`  // "https://HOST" or "http://HOST"
	Auth Auth   `json:"auth"`
	// Realm and Service come from a bearer challenge.
	Realm   string `json:"realm,omitempty"`
	Service string `json:"service,omitempty"`
}

// IsLoopback reports whether host (host, host:port, [v6]:port) is on
// loopback: 127.0.0.0/8, ::1 or localhost. Names are not resolved.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// session is a registry after the ping: the challenge and a transport
// that applies the scheme policy and the scheme the ping found.
type session struct {
	host string
	reg  name.Registry
	ch   *transport.Challenge
	ep   Endpoint
	// rt carries no credentials.
	rt http.RoundTripper
}

// open pings the registry and reads its challenge.
func open(ctx context.Context, host string, opts Options) (*session, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		// go-containerregistry then tries http after https; without it,
		// it does so only for hosts its own heuristic calls local, and
		// the policy below narrows that to loopback.
		nameOpts = append(nameOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return nil, &Error{Host: host, Kind: ErrBadHost, Err: err}
	}
	client := opts.Client
	if client == nil {
		client = NewClient()
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	var rt http.RoundTripper = &schemePolicy{inner: base, insecure: opts.Insecure}
	rt = transport.NewUserAgent(rt, "connectord/"+version.Version)

	ch, err := transport.Ping(ctx, reg, rt)
	if err != nil {
		return nil, classify(host, err, false)
	}
	scheme := "https"
	if ch.Insecure {
		scheme = "http"
	}
	s := &session{
		host: host, reg: reg, ch: ch,
		ep: Endpoint{Host: host, URL: scheme + "://" + reg.RegistryStr()},
		// go-containerregistry's remote package builds URLs with its own
		// guess of the scheme (http for anything local); pin the one
		// the ping proved.
		rt: &schemePin{inner: rt, host: reg.RegistryStr(), scheme: scheme},
	}
	switch strings.ToLower(ch.Scheme) {
	case "":
		s.ep.Auth = AuthNone
	case "basic":
		s.ep.Auth = AuthBasic
	case "bearer":
		s.ep.Auth = AuthBearer
		s.ep.Realm, s.ep.Service = ch.Parameters["realm"], ch.Parameters["service"]
	default:
		return nil, &Error{Host: host, Kind: ErrProtocol, Detail: fmt.Sprintf("unsupported auth scheme %q", ch.Scheme)}
	}
	return s, nil
}

// exchange gets a bearer token for scopes with auth. chall is the
// challenge to use (Login passes one whose realm asks for a refresh
// token).
func (s *session) exchange(ctx context.Context, auth authn.Authenticator, scopes []string, chall *transport.Challenge) (*transport.Token, error) {
	tok, err := transport.Exchange(ctx, s.reg, auth, s.rt, scopes, chall)
	if err != nil {
		return nil, classify(s.host, err, true)
	}
	// Token servers answer "token", "access_token" or both (the
	// distribution token server only the latter); FromToken reads Token.
	if tok.Token == "" {
		tok.Token = tok.AccessToken
	}
	return tok, nil
}

// authenticate returns a transport that sends cred the way the registry
// asked, after checking with an authenticated GET /v2/ that the registry
// accepts it. With bearer auth the token covers scopes.
func (s *session) authenticate(ctx context.Context, cred Credentials, scopes []string) (http.RoundTripper, error) {
	auth := cred.authenticator()
	tok := &transport.Token{}
	if s.ep.Auth == AuthBearer {
		var err error
		if tok, err = s.exchange(ctx, auth, scopes, s.ch); err != nil {
			return nil, err
		}
	}
	return s.check(ctx, auth, tok)
}

// check wraps the transport with auth (and a bearer token already
// fetched) and proves it on GET /v2/: with Basic auth this is the only
// moment the registry sees the password.
func (s *session) check(ctx context.Context, auth authn.Authenticator, tok *transport.Token) (http.RoundTripper, error) {
	if s.ep.Auth == AuthNone {
		auth = authn.Anonymous
	}
	rt, err := transport.FromToken(s.reg, auth, s.rt, s.ch, tok)
	if err != nil {
		return nil, classify(s.host, err, false)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.ep.URL+"/v2/", nil)
	if err != nil {
		return nil, &Error{Host: s.host, Kind: ErrProtocol, Err: err}
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, classify(s.host, err, false)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, classify(s.host, err, false)
	}
	return rt, nil
}

// schemePolicy refuses plain HTTP to hosts not on loopback unless
// insecure: the password or token would cross the network in clear.
type schemePolicy struct {
	inner    http.RoundTripper
	insecure bool
}

func (p *schemePolicy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !p.insecure && !IsLoopback(r.URL.Host) {
		if r.Body != nil {
			r.Body.Close() // the RoundTripper contract, even on error
		}
		return nil, &url.Error{Op: r.Method, URL: "http://" + r.URL.Host + r.URL.Path, Err: errPlainHTTP}
	}
	return p.inner.RoundTrip(r)
}

// schemePin sends requests for the registry host with the scheme the
// ping found.
type schemePin struct {
	inner        http.RoundTripper
	host, scheme string
}

func (p *schemePin) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == p.host && r.URL.Scheme != p.scheme {
		r = r.Clone(r.Context())
		r.URL.Scheme = p.scheme
	}
	return p.inner.RoundTrip(r)
}
