// Package exec is the `exec` connector type: credentials from a program
// the daemon runs, so any existing source is usable as it is. Its two auth
// methods speak the two protocols such programs already speak:
//
//   - `command` runs a docker credential helper's `get` (or anything that
//     answers like one): the registry on stdin, {"Username", "Secret"} and
//     optionally "ExpiresAt" (RFC 3339) on stdout. `command =
//     ["docker-credential-pass", "get"]` works unchanged.
//   - `kubelet-plugin` runs a Kubernetes kubelet image credential provider
//     plugin (credentialprovider.kubelet.k8s.io/v1): a
//     CredentialProviderRequest on stdin, a CredentialProviderResponse on
//     stdout. The ECR, ACR and GCP plugins work unchanged.
//
// Both issue expiring credentials: the daemon caches them and renews them
// in the background (package refresh). A source that states no expiry
// gets expiration_seconds as its lifetime (for a kubelet plugin, the
// response's cacheDuration comes first, as the kubelet's
// defaultCacheDuration does).
//
// Children run without a shell, with a minimal environment (PATH and HOME
// from the daemon, the names listed in pass_env, then the config's env),
// never the daemon's whole environment: secrets in the daemon's
// environment do not leak into them. No secret is ever put in argv. A
// child's stdout is capped at MaxStdout and never shown in errors; its
// stderr is, truncated and with the returned secret redacted.
package exec

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/resourceid"
)

// Ids of this package's type, auth methods and fields.
const (
	TypeID            = "exec"
	AuthCommand       = "command"
	AuthKubeletPlugin = "kubelet-plugin"

	fieldCommand    = "command"
	fieldEnv        = "env"
	fieldPassEnv    = "pass_env"
	fieldTimeout    = "timeout"
	fieldAPIVersion = "api_version"
)

// DefaultTimeout bounds one run of the command when the config sets no
// timeout.
const DefaultTimeout = 30 * time.Second

// Expiration bounds of both auth methods, in seconds: at least 10 s (a
// test issuer's 20-40 s lifetimes fit; anything shorter renews more often
// than a process start is worth), 1 h by default (a docker helper's
// credentials rarely say when they expire, and an hour bounds how long a
// revoked one is served), at most 12 h (an ECR token's lifetime).
var expiration = connectors.ExpirationBounds{Min: 10, Default: 3600, Max: 43200}

func commonFields(cmdHelp string) []connectors.FieldSpec {
	return []connectors.FieldSpec{
		{Name: fieldCommand, Description: cmdHelp, Type: connectors.FieldStringList, Required: true},
		{Name: fieldEnv, Description: "Environment variables for the command, added to PATH and HOME. Not secret: put secrets in files the command reads.", Type: connectors.FieldStringMap},
		{Name: fieldPassEnv, Description: "Names of the daemon's own environment variables to pass to the command (e.g. DBUS_SESSION_BUS_ADDRESS); nothing else of it is passed.", Type: connectors.FieldStringList},
		{Name: fieldTimeout, Description: "How long one run may take.", Type: connectors.FieldDuration, Default: DefaultTimeout},
	}
}

// Spec is the `exec` connector type's declaration.
var Spec = connectors.TypeSpec{
	Type:        TypeID,
	Name:        "External command",
	Description: "Runs a program for credentials: a docker credential helper, or a Kubernetes kubelet image credential provider plugin.",
	AuthMethods: []connectors.AuthMethodSpec{
		{
			ID:   AuthCommand,
			Name: "Docker credential helper protocol",
			Description: "Runs command (no shell) with the registry on stdin; it prints {\"Username\": ..., \"Secret\": ...}, " +
				"optionally with \"ExpiresAt\" (RFC 3339), as `docker-credential-X get` does. Without ExpiresAt the credential lives expiration_seconds.",
			Fields:     commonFields("The program and its arguments, e.g. [\"docker-credential-pass\", \"get\"]."),
			Expiration: &expiration,
		},
		{
			ID:   AuthKubeletPlugin,
			Name: "Kubelet image credential provider plugin",
			Description: "Runs a kubelet credential provider plugin (ECR, ACR, GCP, ...) with a CredentialProviderRequest on stdin and reads its " +
				"CredentialProviderResponse; cacheDuration is the lifetime, expiration_seconds the default when it has none.",
			Fields: append(commonFields("The plugin binary and its arguments (the kubelet config's name and args)."),
				connectors.FieldSpec{Name: fieldAPIVersion, Description: "The plugin's API version; its response must carry the same.", Type: connectors.FieldString, Default: APIVersionV1}),
			Expiration: &expiration,
		},
	},
	ResourceTypes: []connectors.ResourceTypeSpec{{
		ID:   connectors.ResourceTypeDockerRegistry,
		Name: "Docker registry",
		Description: "A registry host (host[:port]), a repository prefix, or a glob with the kubelet's matchImages semantics " +
			"such as \"*.dkr.ecr.*.amazonaws.com\".",
		AuthMethods:       []string{AuthCommand, AuthKubeletPlugin},
		SupportsInstances: true,
		SupportsGlobs:     true,
	}},
}

func init() {
	registry.Default.MustRegister(registry.Type{Spec: Spec, New: func() connectors.Connector { return new(Connector) }})
}

// Connector runs the configured command.
type Connector struct {
	name       string
	method     string
	argv       []string
	env        []string
	timeout    time.Duration
	apiVersion string
	// now stamps kubelet cacheDuration; replaced in tests.
	now func() time.Time
}

var (
	_ connectors.Connector = (*Connector)(nil)
	_ connectors.Scoper    = (*Connector)(nil)
)

// Configure implements connectors.Connector. It checks what the schema
// cannot, without running anything.
func (c *Connector) Configure(inst *connectors.Instance) error {
	c.name, c.method, c.now = inst.Name, inst.AuthMethod, time.Now
	c.argv = inst.Config.StringList(fieldCommand)
	if len(c.argv) == 0 || c.argv[0] == "" {
		return fmt.Errorf("config.%s: needs at least the program, as in [\"docker-credential-pass\", \"get\"]", fieldCommand)
	}
	if strings.ContainsAny(c.argv[0], " \t") && !strings.Contains(c.argv[0], "/") {
		// "docker-credential-pass get" as one string: there is no shell to
		// split it.
		return fmt.Errorf("config.%s: %q is one program name with spaces; give the program and each argument as separate list elements (no shell runs it)", fieldCommand, c.argv[0])
	}
	env := inst.Config.StringMap(fieldEnv)
	for k := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("config.%s: invalid variable name %q", fieldEnv, k)
		}
	}
	pass := inst.Config.StringList(fieldPassEnv)
	for _, k := range pass {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("config.%s: invalid variable name %q", fieldPassEnv, k)
		}
	}
	c.env = childEnv(lookupEnv, pass, env)
	c.timeout = inst.Config.Duration(fieldTimeout)
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.method == AuthKubeletPlugin {
		c.apiVersion = inst.Config.String(fieldAPIVersion)
		if !slices.Contains(APIVersions, c.apiVersion) {
			return fmt.Errorf("config.%s: %q is not a kubelet credential provider API version (known: %s)", fieldAPIVersion, c.apiVersion, strings.Join(APIVersions, ", "))
		}
	}
	return nil
}

// CacheScope implements connectors.Scoper: a docker credential helper
// answers per registry, so concurrent gets for one registry share a run.
// A kubelet plugin says its scope in its response; until then the daemon
// assumes the narrowest.
func (c *Connector) CacheScope() connectors.CacheScope {
	if c.method == AuthKubeletPlugin {
		return connectors.ScopeImage
	}
	return connectors.ScopeRegistry
}

// Credentials implements connectors.Connector: one run of the command.
func (c *Connector) Credentials(ctx context.Context, rid resourceid.ID) (connectors.Credentials, error) {
	if c.method == AuthKubeletPlugin {
		return c.kubelet(ctx, rid)
	}
	return c.helper(ctx, rid)
}

// helper runs a docker credential helper's get. Its stdin is what docker
// itself would send: the registry's key (host[:port], or Docker Hub's
// "https://index.docker.io/v1/"), whatever repository was asked about,
// because docker helpers file credentials per registry and the daemon
// caches them per registry.
func (c *Connector) helper(ctx context.Context, rid resourceid.ID) (connectors.Credentials, error) {
	out, err := c.run(ctx, []byte(rid.Key()+"\n"))
	if err != nil {
		var fe *failure
		if asFailure(err, &fe) && fe.notFound {
			return connectors.Credentials{}, fmt.Errorf("%s has no credentials for %s (it answered %q)", c.argv[0], rid.Key(), dockerNotFound)
		}
		return connectors.Credentials{}, err
	}
	cred, err := ParseHelperOutput(out.stdout)
	if err != nil {
		return connectors.Credentials{}, c.outputError(err, out, "")
	}
	return cred, nil
}

// kubelet runs a kubelet credential provider plugin for rid as the image.
func (c *Connector) kubelet(ctx context.Context, rid resourceid.ID) (connectors.Credentials, error) {
	in, err := NewKubeletRequest(c.apiVersion, rid)
	if err != nil {
		return connectors.Credentials{}, err
	}
	out, err := c.run(ctx, in)
	if err != nil {
		return connectors.Credentials{}, err
	}
	resp, err := ParseKubeletResponse(out.stdout, c.apiVersion)
	if err != nil {
		return connectors.Credentials{}, c.outputError(err, out, "")
	}
	cred, err := resp.Credentials(rid, c.now())
	if err != nil {
		return connectors.Credentials{}, c.outputError(err, out, cred.Secret.Reveal())
	}
	return cred, nil
}
