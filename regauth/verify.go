package regauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// MaxRepositories bounds the repositories Verify lists: a public
// registry's catalog can be huge, and the answer crosses the daemon's
// socket, whose messages are limited (ipc.MaxMessageSize).
const MaxRepositories = 1000

// catalogPageSize is the page size asked of the registry.
const catalogPageSize = 100

// VerifyResult is what Verify found.
type VerifyResult struct {
	Endpoint
	// Repositories are the catalog's repositories (under path, when one
	// was given), sorted; empty when the catalog is not available.
	Repositories []string
	// Note explains a partial answer: a registry that hides its catalog,
	// a list cut at MaxRepositories, a registry that asks for no
	// credentials.
	Note string
}

// Verify authenticates cred against the registry at host for real and
// lists the repositories it reaches: ping, then Basic or bearer auth as
// the registry asks, then an authenticated GET /v2/, then the catalog
// (scope registry:catalog:*). path, when not empty, narrows the list to
// one repository or repository prefix; where the registry hides its
// catalog, Verify then checks that path's tags instead.
//
// Failing to authenticate is an error (an *Error whose Kind is
// ErrUnauthorized, ErrDenied, ...); a catalog the registry refuses or
// lacks (401, 403, 404) is not, and is explained in Note.
func Verify(ctx context.Context, host, path string, cred Credentials, opts Options) (*VerifyResult, error) {
	s, err := open(ctx, host, opts)
	if err != nil {
		return nil, err
	}
	scopes := []string{"registry:catalog:*"}
	if path != "" {
		scopes = append(scopes, "repository:"+path+":pull")
	}
	rt, err := s.authenticate(ctx, cred, scopes)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{Endpoint: s.ep}
	var notes []string
	if s.ep.Auth == AuthNone {
		notes = append(notes, "the registry asks for no credentials, so any are accepted")
	}

	repos, truncated, err := s.catalog(ctx, rt)
	var unavailable string
	switch {
	case err == nil:
		if path != "" {
			repos = slices.DeleteFunc(repos, func(r string) bool { return r != path && !strings.HasPrefix(r, path+"/") })
		}
		res.Repositories = repos
		if truncated {
			notes = append(notes, fmt.Sprintf("the catalog lists more than %d repositories; only the first %d are shown", MaxRepositories, MaxRepositories))
		}
	case catalogRefused(err):
		unavailable = "catalog not available: " + err.(*Error).detailOrKind()
		notes = append(notes, unavailable)
	default:
		return nil, err
	}

	// Without a catalog, a path can still be checked on its own.
	if path != "" && unavailable != "" {
		switch err := s.tags(ctx, rt, path); {
		case err == nil:
			res.Repositories = []string{path}
		case catalogRefused(err):
			notes = append(notes, fmt.Sprintf("repository %s not listable: %s", path, err.(*Error).detailOrKind()))
		default:
			return nil, err
		}
	}
	res.Note = strings.Join(notes, "; ")
	return res, nil
}

// catalogRefused reports a refusal that does not fail a verification:
// the credentials were good, the registry just will not list.
func catalogRefused(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return true
	}
	return false
}

// detailOrKind is the registry's words, else the status.
func (e *Error) detailOrKind() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Kind.Error()
}

// catalog lists up to MaxRepositories repositories, following the
// registry's Link headers.
func (s *session) catalog(ctx context.Context, rt http.RoundTripper) (repos []string, truncated bool, _ error) {
	p, err := remote.NewPuller(remote.WithTransport(rt), remote.WithContext(ctx), remote.WithPageSize(catalogPageSize))
	if err != nil {
		return nil, false, &Error{Host: s.host, Kind: ErrProtocol, Err: err}
	}
	c, err := p.Catalogger(ctx, s.reg)
	if err != nil {
		return nil, false, s.catalogError(err)
	}
	for c.HasNext() {
		page, err := c.Next(ctx)
		if err != nil {
			return nil, false, s.catalogError(err)
		}
		repos = append(repos, page.Repos...)
		if len(repos) >= MaxRepositories {
			truncated = len(repos) > MaxRepositories || page.Next != ""
			repos = repos[:MaxRepositories]
			break
		}
	}
	slices.Sort(repos)
	return slices.Compact(repos), truncated, nil
}

// catalogError classifies a catalog failure; a 404 there means no
// catalog, not "no registry" (the ping proved there is one).
func (s *session) catalogError(err error) *Error {
	e := classify(s.host, err, false)
	if e.Status == http.StatusNotFound {
		e.Kind = ErrProtocol
	}
	return e
}

// tags checks that path is a repository the credentials can list.
func (s *session) tags(ctx context.Context, rt http.RoundTripper, path string) error {
	repo := s.reg.Repo(path)
	_, err := remote.List(repo, remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) {
			return s.catalogError(err)
		}
		return classify(s.host, err, false)
	}
	return nil
}
