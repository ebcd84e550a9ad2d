// Package docker is the `docker` connector type: a username and password
// (or a registry token) for one docker registry, as with `docker login`.
// It mirrors ZenML's Docker service connector, where both the username
// and the password are secret fields.
package docker

import (
	"context"
	"fmt"
	"net/http"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// Type ids of this package.
const (
	TypeID         = "docker"
	AuthPassword   = "password"
	fieldUsername  = "username"
	fieldPassword  = "password"
	fieldInsecure  = "insecure"
	resourceDocker = connectors.ResourceTypeDockerRegistry
)

// Spec is the `docker` connector type's declaration.
var Spec = connectors.TypeSpec{
	Type:        TypeID,
	Name:        "Docker registry",
	Description: "Authenticates to one docker registry with a username and password or token, as `docker login` does.",
	AuthMethods: []connectors.AuthMethodSpec{{
		ID:          AuthPassword,
		Name:        "Username and password",
		Description: "A registry username with its password, or a personal access token in the password field.",
		Fields: []connectors.FieldSpec{
			{Name: fieldUsername, Description: "Registry username.", Type: connectors.FieldString, Required: true, Secret: true},
			{Name: fieldPassword, Description: "Password or access token.", Type: connectors.FieldString, Required: true, Secret: true},
			{Name: fieldInsecure, Description: "Let `connectord verify` reach this registry over plain HTTP when HTTPS fails. Loopback registries (127.0.0.0/8, ::1, localhost) are allowed plain HTTP without it, as docker allows them; TLS certificates are verified either way.", Type: connectors.FieldBool},
		},
	}},
	// `connectord import` is this type's auto-configure: it takes the
	// plaintext auths of a docker config.json.
	SupportsAutoConfiguration: true,
	ResourceTypes: []connectors.ResourceTypeSpec{{
		ID:                resourceDocker,
		Name:              "Docker registry",
		Description:       "A registry host (host[:port]), optionally narrowed to a repository path prefix.",
		AuthMethods:       []string{AuthPassword},
		SupportsInstances: true,
	}},
}

func init() {
	registry.Default.MustRegister(registry.Type{Spec: Spec, New: func() connectors.Connector { return new(Connector) }})
}

// Connector serves fixed credentials.
type Connector struct {
	username, password secret.Value
	// insecure allows plain HTTP to a registry not on loopback (Verify).
	insecure bool
	// client talks to the registry in Verify; nil means regauth's default.
	client *http.Client
}

var _ connectors.Connector = (*Connector)(nil)

// Format keeps fmt from printing the unexported secret fields raw.
func (c *Connector) Format(f fmt.State, verb rune) {
	secret.FormatRedacted(f, verb, struct{ Username, Password secret.Value }{c.username, c.password})
}

// Username lets `list` answer without a fetch.
func (c *Connector) Username() string { return c.username.Reveal() }

// Configure implements connectors.Connector.
func (c *Connector) Configure(inst *connectors.Instance) error {
	c.username = inst.Config.Secret(fieldUsername)
	c.password = inst.Config.Secret(fieldPassword)
	c.insecure = inst.Config.Bool(fieldInsecure)
	return nil
}

// Credentials implements connectors.Connector.
func (c *Connector) Credentials(_ context.Context, _ resourceid.ID) (connectors.Credentials, error) {
	return connectors.Credentials{Username: c.username.Reveal(), Secret: c.password}, nil
}
