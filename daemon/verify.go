package daemon

import (
	"context"

	"github.com/connectord/connectord/ipc"
)

// verify authenticates connector req.Name against its registry.
func (d *Daemon) verify(ctx context.Context, req *ipc.Request) *ipc.Response {
	return fail(ipc.Errorf(ipc.CodeInvalid, "verify is not implemented yet"))
}
