package docker

import (
	"context"
	"fmt"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

var _ connectors.Verifier = (*Connector)(nil)

// FromCredentials returns a connector serving fixed credentials that come
// from no config: the daemon verifies credentials stored through
// `docker login` with it. A username of regauth.TokenUsername marks an
// identity token.
func FromCredentials(username string, password secret.Value) *Connector {
	return &Connector{username: secret.New(username), password: password}
}

// Verify implements connectors.Verifier: it authenticates against the
// registry of rid as a docker client would (HTTPS, or plain HTTP for a
// loopback registry or with `insecure`), then lists the catalog's
// repositories under rid's path (see regauth.Verify).
func (c *Connector) Verify(ctx context.Context, rid resourceid.ID) (*connectors.Resources, error) {
	if rid.Host == "" {
		return nil, fmt.Errorf("verify: no registry to verify against")
	}
	cred := regauth.Credentials{Username: c.username.Reveal(), Secret: c.password}
	res, err := regauth.Verify(ctx, rid.Host, rid.Path, cred, regauth.Options{Client: c.client, Insecure: c.insecure})
	if err != nil {
		return nil, err
	}
	return &connectors.Resources{
		ResourceType: resourceDocker,
		ResourceID:   rid.String(),
		Repositories: res.Repositories,
		Note:         res.Note,
		Endpoint:     res.URL,
		Auth:         string(res.Auth),
	}, nil
}
