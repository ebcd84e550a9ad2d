package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/connectors/docker"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/store"
)

// VerifyTimeout bounds one verification: a ping, a token exchange or two,
// an authenticated GET and a catalog of at most regauth.MaxRepositories.
// It stays below the socket client's own limit (ipc/client's
// DefaultIOTimeout, 30 s), so the CLI hears why a slow registry failed
// rather than a bare timeout.
const VerifyTimeout = 25 * time.Second

// VerifyArgs are OpVerify's Args.
type VerifyArgs struct {
	// ResourceID narrows the verification to one registry or repository
	// prefix the connector serves (needed for a glob connector). Empty:
	// the connector's own resource id.
	ResourceID string `json:"resource_id,omitempty"`
}

// verify authenticates a connector (by name) or a stored credential (by
// registry) against its registry for real, and answers the
// connectors.Resources it reaches. Failures are errors whose message says
// what the registry said: CodeForbidden when it refused the credentials,
// CodeUnavailable when it could not be reached or answered oddly,
// CodeInvalid when the connector cannot be verified.
func (d *Daemon) verify(ctx context.Context, req *ipc.Request) *ipc.Response {
	var args VerifyArgs
	if len(req.Args) > 0 {
		if err := json.Unmarshal(req.Args, &args); err != nil {
			return fail(ipc.Errorf(ipc.CodeInvalid, "verify: bad args: %v", err))
		}
	}
	if req.Name == "" {
		return fail(ipc.Errorf(ipc.CodeInvalid, "verify: name a connector or a registry with stored credentials (see `connectord list`)"))
	}
	ctx, cancel := context.WithTimeout(ctx, VerifyTimeout)
	defer cancel()

	for _, inst := range d.set.Load().list {
		if inst.Name != req.Name {
			continue
		}
		rid, ierr := verifyTarget(inst, args.ResourceID)
		if ierr != nil {
			return fail(ierr)
		}
		res, err := verifyInstance(ctx, inst, rid)
		return d.verifyAnswer("connector", inst.Name, rid, res, err)
	}

	// Not a connector: a registry whose credentials came through
	// `docker login` (or `connectord login`).
	rid, err := resourceid.Parse(req.Name)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeNotFound, "no connector or stored credential named %q (see `connectord list`)", req.Name))
	}
	cred, err := d.opts.Store.Get(ctx, rid.Key())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail(ipc.Errorf(ipc.CodeNotFound, "no connector or stored credential named %q (see `connectord list`)", req.Name))
	case err != nil:
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	target := rid.Registry()
	if args.ResourceID != "" {
		narrow, err := resourceid.Parse(args.ResourceID)
		if err != nil {
			return fail(ipc.Errorf(ipc.CodeInvalid, "verify: %v", err))
		}
		if !target.Covers(narrow) {
			return fail(ipc.Errorf(ipc.CodeInvalid, "verify: %s is not on %s, whose credentials are stored", narrow, target))
		}
		target = narrow
	}
	res, err := docker.FromCredentials(cred.Username, cred.Secret).Verify(ctx, target)
	if err != nil {
		err = fmt.Errorf("stored credentials for %s: %w", rid.Key(), err)
	}
	return d.verifyAnswer("registry", rid.Key(), target, res, err)
}

// verifyTarget is the resource to verify a connector against: the
// requested one, which the connector must serve, else its own.
func verifyTarget(inst *connectors.Instance, raw string) (resourceid.ID, *ipc.Error) {
	if raw == "" {
		if inst.IsGlob() || inst.RID.Host == "" {
			return resourceid.ID{}, ipc.Errorf(ipc.CodeInvalid,
				"connector %q serves %q, a pattern: name one registry it matches with --resource-id", inst.Name, inst.ResourceID)
		}
		return inst.RID, nil
	}
	rid, err := resourceid.Parse(raw)
	if err != nil {
		return resourceid.ID{}, ipc.Errorf(ipc.CodeInvalid, "verify: %v", err)
	}
	if !inst.Covers(rid) {
		return resourceid.ID{}, ipc.Errorf(ipc.CodeInvalid, "connector %q does not serve %s (its resource id is %s)", inst.Name, rid, inst.ResourceID)
	}
	return rid, nil
}

// verifyInstance verifies a connector: through its type's own Verify, or,
// for a docker-registry connector whose type has none (one that fetches
// credentials from elsewhere), by fetching a credential and verifying
// that, which is what a client pulling through it would see.
func verifyInstance(ctx context.Context, inst *connectors.Instance, rid resourceid.ID) (*connectors.Resources, error) {
	res, err := inst.Verify(ctx, rid)
	if !errors.Is(err, connectors.ErrNotSupported) || inst.ResourceType != connectors.ResourceTypeDockerRegistry {
		return res, err
	}
	c, err := inst.Credentials(ctx, rid)
	if err != nil {
		return nil, err
	}
	res, err = docker.FromCredentials(c.Username, c.Secret).Verify(ctx, rid)
	if err != nil {
		return nil, fmt.Errorf("connector %q: %w", inst.Name, err)
	}
	return res, nil
}

func (d *Daemon) verifyAnswer(kind, name string, rid resourceid.ID, res *connectors.Resources, err error) *ipc.Response {
	if err == nil {
		d.log.Info("verified", kind, name, "resource", rid.String(), "repositories", len(res.Repositories))
		return dataResponse(res)
	}
	// The error names hosts and what the registry said, never a secret
	// (package regauth's rule), so it can be logged and sent.
	d.log.Warn("verify failed", kind, name, "resource", rid.String(), "err", err)
	code := ipc.CodeUnavailable
	switch {
	case errors.Is(err, regauth.ErrUnauthorized), errors.Is(err, regauth.ErrDenied):
		code = ipc.CodeForbidden
	case errors.Is(err, connectors.ErrNotSupported):
		code = ipc.CodeInvalid
	case errors.Is(err, context.DeadlineExceeded):
		return fail(ipc.Errorf(code, "%v (verify gives up after %s)", err, VerifyTimeout))
	}
	return fail(ipc.Errorf(code, "%v", err))
}
