package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/secret"
)

// Helper keeps credentials in one of docker-credential-helpers' own
// backends (pass, secretservice) instead of the file.
//
// Those backends are slow (pass decrypts with gpg on every read, about
// 15x a minimal process), so Helper caches what it has read in memory:
// after the first get of a registry the daemon answers from memory, and
// writes go through to the backend before they are acknowledged. Changes
// made to the backend behind connectord's back are seen after a restart.
type Helper struct {
	name string
	h    credentials.Helper

	mu     sync.Mutex
	cache  map[string]Credential // secrets read or written so far
	listed map[string]string     // key -> username, from the backend's List
}

// NewHelper wraps a docker-credential-helpers backend; name ("pass",
// "secretservice") appears in errors.
func NewHelper(name string, h credentials.Helper) *Helper {
	return &Helper{name: name, h: h, cache: map[string]Credential{}}
}

// Format keeps fmt away from the cached secrets.
func (s *Helper) Format(f fmt.State, verb rune) {
	secret.FormatRedacted(f, verb, "store.Helper("+s.name+")")
}

// Get implements the daemon's store.
func (s *Helper) Get(ctx context.Context, key string) (Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[key]; ok {
		return c, nil
	}
	if err := ctx.Err(); err != nil {
		return Credential{}, err
	}
	user, pass, err := s.h.Get(key)
	if credentials.IsErrCredentialsNotFound(err) {
		return Credential{}, fmt.Errorf("%s: %q: %w", s.name, key, ErrNotFound)
	}
	if err != nil {
		return Credential{}, fmt.Errorf("%s backend: get %q: %w", s.name, key, err)
	}
	c := Credential{Username: user, Secret: secret.New(pass)}
	s.cache[key] = c
	return c, nil
}

// Put implements the daemon's store. It is durable in the backend before
// it returns.
func (s *Helper) Put(ctx context.Context, key string, c Credential) error {
	if key == "" || c.Username == "" {
		return fmt.Errorf("%s backend: %w: empty registry or username", s.name, ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.h.Add(&credentials.Credentials{ServerURL: key, Username: c.Username, Secret: c.Secret.Reveal()}); err != nil {
		return fmt.Errorf("%s backend: store %q: %w", s.name, key, err)
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = time.Now().UTC()
	}
	s.cache[key] = c
	if s.listed != nil {
		s.listed[key] = c.Username
	}
	return nil
}

// Delete implements the daemon's store.
func (s *Helper) Delete(ctx context.Context, key string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	err := s.h.Delete(key)
	delete(s.cache, key)
	if s.listed != nil {
		delete(s.listed, key)
	}
	switch {
	case credentials.IsErrCredentialsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s backend: erase %q: %w", s.name, key, err)
	}
	return true, nil
}

// List implements the daemon's store. Entries carry the username only:
// listing must not decrypt every secret.
func (s *Helper) List(ctx context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listed == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m, err := s.h.List()
		if err != nil && !credentials.IsErrCredentialsNotFound(err) {
			return nil, fmt.Errorf("%s backend: list: %w", s.name, err)
		}
		s.listed = maps.Clone(m)
		if s.listed == nil {
			s.listed = map[string]string{}
		}
	}
	out := make([]Entry, 0, len(s.listed))
	for _, k := range slices.Sorted(maps.Keys(s.listed)) {
		out = append(out, Entry{Key: k, Credential: Credential{Username: s.listed[k]}})
	}
	return out, nil
}

// ErrBackendUnavailable is returned by OpenBackend for a backend this
// build or machine cannot use.
var ErrBackendUnavailable = errors.New("credential store backend unavailable")
