package daemon

import (
	"context"
	"encoding/json"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/store"
)

// DescribeArgs are OpDescribe's Args.
type DescribeArgs struct {
	ShowSecrets bool `json:"show_secrets,omitempty"`
}

// describe answers one connector, config or stored, by name. Secrets are
// redacted unless the request asks, by name, to show them.
func (d *Daemon) describe(ctx context.Context, req *ipc.Request) *ipc.Response {
	var args DescribeArgs
	if len(req.Args) > 0 {
		if err := json.Unmarshal(req.Args, &args); err != nil {
			return fail(ipc.Errorf(ipc.CodeInvalid, "describe: bad args: %v", err))
		}
	}
	for _, inst := range d.set.Load().list {
		if inst.Name == req.Name {
			info := d.info(inst)
			if args.ShowSecrets {
				info.Config = inst.Config.Revealed()
				d.log.Info("secrets shown on request", "connector", inst.Name)
			}
			return dataResponse(info)
		}
	}
	entries, err := d.opts.Store.List(ctx)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	want := req.Name
	if rid, err := resourceid.Parse(req.Name); err == nil {
		want = rid.Key()
	}
	for _, e := range entries {
		if e.Key == want || e.Key == req.Name {
			info := storedInfo(e)
			if args.ShowSecrets {
				info.Config = revealStored(e)
				d.log.Info("secrets shown on request", "registry", e.Key)
			}
			return dataResponse(info)
		}
	}
	return fail(ipc.Errorf(ipc.CodeNotFound, "no connector or stored credential named %q (see `connectord list`)", req.Name))
}

func revealStored(e store.Entry) map[string]any {
	return map[string]any{"username": e.Credential.Username, "password": e.Credential.Secret.Reveal()}
}

// info is the printable view of a running connector. The refresher adds
// its state here.
func (d *Daemon) info(inst *connectors.Instance) connectors.Info {
	return d.withRefreshState(inst, inst.Info())
}
