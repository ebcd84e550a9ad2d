package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/ipc"
)

func runDescribe(e *env, args []string) int {
	fs := e.flagSet("describe", "NAME [flags]", "Show one connector (by name) or stored credential (by registry), with\nsecrets redacted unless --show-secrets is given.")
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	asJSON := fs.Bool("json", false, "print JSON")
	show := fs.Bool("show-secrets", false, "print the secrets in clear (this one connector only)")
	if code, ok := e.parse(fs, interleave(args), 1); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "connectord describe: name one connector (see `connectord list`)")
		return exitUsage
	}
	raw, _ := json.Marshal(daemon.DescribeArgs{ShowSecrets: *show})
	var info connectors.Info
	if err := e.call(e.socketPath(*socketFlag, *configFlag), &ipc.Request{Op: ipc.OpDescribe, Name: fs.Arg(0), Args: raw}, &info); err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		return e.printJSON(info)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }
	row("name", info.Name)
	row("id", info.ID)
	row("origin", info.Origin)
	row("type", info.Type)
	row("auth method", info.AuthMethod)
	row("resource type", info.ResourceType)
	row("resource id", info.ResourceID)
	if info.ExpiresAt != nil {
		row("expires at", info.ExpiresAt.Format(time.RFC3339))
	}
	if info.ExpirationSeconds != nil {
		row("expiration seconds", *info.ExpirationSeconds)
	}
	if info.ExpiresSkewTolerance != nil {
		row("expires skew tolerance", *info.ExpiresSkewTolerance)
	}
	for _, k := range slices.Sorted(maps.Keys(info.Config)) {
		row("config."+k, info.Config[k])
	}
	_ = w.Flush()
	return exitOK
}

// interleave moves flags after the positional argument to the front, so
// `connectord describe lab --json` works as well as `describe --json lab`
// (the flag package stops at the first non-flag).
func interleave(args []string) []string {
	var flags, pos []string
	for _, a := range args {
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
		} else {
			pos = append(pos, a)
		}
	}
	return append(flags, pos...)
}
