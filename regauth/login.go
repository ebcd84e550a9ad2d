package regauth

import (
	"context"
	"maps"
	"net/url"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/connectord/connectord/secret"
)

// LoginResult is what Login found and what to store.
type LoginResult struct {
	Endpoint
	// Credentials are what a client should be handed from now on: the
	// username and password, or TokenUsername and the identity token the
	// token server issued in exchange for them (docker's convention).
	Credentials Credentials
	// Note explains a choice the caller may want to show.
	Note string
}

// Login does what `docker login` does, without a docker engine: it checks
// username and password against the registry, and where the registry uses
// a token server that issues refresh tokens it returns the identity token
// instead of the password, so the password need not be kept.
//
// go-containerregistry exchanges credentials for tokens but never asks
// for a refresh token: its GET to the realm lacks offline_token=true (and
// its OAuth2 password grant is unreachable). docker's distribution client
// asks with `offline_token=true&client_id=...` on that same GET (the
// token specification's parameters). Rather than hand-write that request,
// Login hands go-containerregistry's Exchange a copy of the challenge
// whose realm carries the two parameters: Exchange keeps a realm's own
// query, and so the request still gets its realm check, redirect check,
// size limit and error handling. The token server then answers with a
// refresh_token next to the access token.
//
// Before the identity token is returned it is tried once (the OAuth2
// grant_type=refresh_token flow every client will use with it); a token
// server that issues refresh tokens it then refuses gets the password
// stored instead, as it would if it issued none, and one that rotates
// refresh tokens on use gets the newest one stored.
func Login(ctx context.Context, host, username string, password secret.Value, opts Options) (*LoginResult, error) {
	s, err := open(ctx, host, opts)
	if err != nil {
		return nil, err
	}
	cred := Credentials{Username: username, Secret: password}
	res := &LoginResult{Endpoint: s.ep, Credentials: cred}
	auth := cred.authenticator()

	switch s.ep.Auth {
	case AuthNone:
		res.Note = "the registry asks for no credentials; they are stored unchecked"
		if _, err := s.check(ctx, auth, &transport.Token{}); err != nil {
			return nil, err
		}
		return res, nil
	case AuthBasic:
		if _, err := s.check(ctx, auth, &transport.Token{}); err != nil {
			return nil, err
		}
		return res, nil
	}

	// Bearer: no scopes, as docker login asks for none.
	tok, err := s.exchange(ctx, auth, nil, offlineChallenge(s.ch))
	if err != nil {
		return nil, err
	}
	if _, err := s.check(ctx, auth, tok); err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		return res, nil
	}
	idToken := Credentials{Username: TokenUsername, Secret: secret.New(tok.RefreshToken)}
	again, err := s.exchange(ctx, idToken.authenticator(), nil, s.ch)
	if err != nil {
		res.Note = "the token server issued an identity token but refused it (" + err.Error() + "); storing the password instead"
		return res, nil
	}
	if again.RefreshToken != "" {
		// A token server that rotates refresh tokens has just retired
		// the first one: keep the one it handed back.
		idToken.Secret = secret.New(again.RefreshToken)
	}
	res.Credentials = idToken
	return res, nil
}

// offlineChallenge returns a copy of ch whose realm asks for a refresh
// token. A realm that cannot be parsed is left alone: Exchange reports it.
func offlineChallenge(ch *transport.Challenge) *transport.Challenge {
	c := *ch
	c.Parameters = maps.Clone(ch.Parameters)
	u, err := url.Parse(c.Parameters["realm"])
	if err != nil {
		return &c
	}
	q := u.Query()
	q.Set("offline_token", "true")
	q.Set("client_id", ClientID)
	u.RawQuery = q.Encode()
	c.Parameters["realm"] = u.String()
	return &c
}
