package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/regauth"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
)

// loginTimeout bounds login's conversation with the registry and its
// token server.
const loginTimeout = time.Minute

// maxPasswordLen bounds what --password-stdin reads: a password or token
// is far smaller, and the daemon's messages are limited anyway.
const maxPasswordLen = 64 << 10

func runVerify(e *env, args []string) int {
	fs := e.flagSet("verify", "NAME [flags]", `Authenticate connector NAME against its registry for real, as a client does
before a pull: GET /v2/, then basic auth or the token flow the registry's
challenge asks for, then an authenticated GET /v2/. Then list the
repositories the credentials reach from the registry's catalog, where the
registry allows it. NAME may also be a registry whose credentials were
stored by `+"`docker login`"+` or `+"`connectord login`"+`. The daemon does the work, so
its environment counts (SSL_CERT_FILE for a private CA).

Exit 0 when the registry accepted the credentials, 1 when it refused them
or could not be reached.`)
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	rid := fs.String("resource-id", "", "verify against this registry or repository prefix the connector serves (default: the connector's resource id)")
	asJSON := fs.Bool("json", false, "print JSON: resource_type, resource_id, repositories, note, endpoint, auth")
	if code, ok := e.parse(fs, interleaveFlags(fs, args), 1); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "connectord verify: name one connector or registry (see `connectord list`)")
		return exitUsage
	}
	raw, _ := json.Marshal(daemon.VerifyArgs{ResourceID: *rid})
	var res connectors.Resources
	if err := e.call(e.socketPath(*socketFlag, *configFlag), &ipc.Request{Op: ipc.OpVerify, Name: fs.Arg(0), Args: raw}, &res); err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		if res.Repositories == nil {
			res.Repositories = []string{}
		}
		return e.printJSON(res)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s:\t%v\n", k, v) }
	row("name", fs.Arg(0))
	row("resource type", res.ResourceType)
	row("resource id", res.ResourceID)
	if res.Endpoint != "" {
		row("endpoint", res.Endpoint)
	}
	if res.Auth != "" {
		row("auth", res.Auth)
	}
	row("repositories", len(res.Repositories))
	_ = w.Flush()
	for _, r := range res.Repositories {
		fmt.Fprintf(e.stdout, "  %s\n", r)
	}
	if res.Note != "" {
		fmt.Fprintf(e.stdout, "note: %s\n", res.Note)
	}
	return exitOK
}

func runLogin(e *env, args []string) int {
	fs := e.flagSet("login", "[REGISTRY] [flags]", `Log in to REGISTRY (default Docker Hub) as `+"`docker login`"+` does, with no docker
engine: check the username and password against the registry (basic auth,
or the token flow its challenge asks for), then store the credentials in
the running daemon. Where the registry's token server issues refresh tokens
(OAuth2, offline_token=true), the identity token is stored instead of the
password, as docker does (username "<token>").

The password is read from stdin with --password-stdin (one trailing newline
dropped), else asked for on the terminal without echo. It is never taken
on the command line. Plain HTTP is used only for a registry on loopback,
or with --insecure; certificates are always verified (SSL_CERT_FILE for a
private CA).`)
	user := fs.String("username", "", "username")
	fs.StringVar(user, "u", "", "username (shorthand)")
	passStdin := fs.Bool("password-stdin", false, "read the password (or token) from stdin")
	insecure := fs.Bool("insecure", false, "allow plain HTTP to a registry that is not on loopback")
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	for _, a := range args {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && (name == "p" || name == "password") {
			fmt.Fprintln(e.stderr, "connectord login: a password is never taken on the command line (shell history, ps); pipe it to --password-stdin")
			return exitUsage
		}
	}
	if code, ok := e.parse(fs, interleaveFlags(fs, args), 1); !ok {
		return code
	}
	rid, code, ok := e.registryArg(fs)
	if !ok {
		return code
	}
	if *passStdin && *user == "" {
		fmt.Fprintln(e.stderr, "connectord login: --password-stdin needs --username (-u)")
		return exitUsage
	}

	// A login the daemon cannot store is wasted effort (and on a token
	// registry, a refresh token issued for nothing): ask it first.
	socket := e.socketPath(*socketFlag, *configFlag)
	if err := e.ping(socket); err != nil {
		return e.fail("%v", err)
	}
	username, password, err := e.readCredentials(*user, *passStdin)
	if errors.Is(err, errNoTTY) {
		// docker's words, which scripts already know.
		return e.fail("Cannot perform an interactive login from a non TTY device (pipe the password to --password-stdin)")
	}
	if err != nil {
		return e.fail("%v", err)
	}

	ctx, cancel := context.WithTimeout(e.ctx, loginTimeout)
	defer cancel()
	res, err := regauth.Login(ctx, rid.Host, username, password, regauth.Options{Insecure: *insecure})
	if err != nil {
		var rerr *regauth.Error
		if errors.Is(err, regauth.ErrUnauthorized) && errors.As(err, &rerr) {
			msg := fmt.Sprintf("login failed: wrong username or password for %s", rid.Host)
			if rerr.Detail != "" {
				msg += " (registry said: " + rerr.Detail + ")"
			}
			return e.fail("%s", msg)
		}
		return e.fail("login failed: %v", err)
	}
	req := &ipc.Request{Op: ipc.OpStore, ServerURL: rid.Key(), Username: res.Credentials.Username, Secret: res.Credentials.Secret.Reveal()}
	if err := e.call(socket, req, nil); err != nil {
		return e.fail("the registry accepted the credentials, but storing them failed: %v", err)
	}
	if res.Credentials.IsIdentityToken() {
		fmt.Fprintf(e.stderr, "connectord: stored an identity token from %s's token server instead of the password\n", rid.Host)
	}
	if res.Note != "" {
		fmt.Fprintf(e.stderr, "connectord: %s\n", res.Note)
	}
	fmt.Fprintln(e.stdout, "Login Succeeded")
	return exitOK
}

func runLogout(e *env, args []string) int {
	fs := e.flagSet("logout", "[REGISTRY] [flags]", `Erase the credentials stored for REGISTRY (default Docker Hub), as
`+"`docker logout`"+` does. A connector from the config is not touched: remove it
from the config instead.`)
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	if code, ok := e.parse(fs, interleaveFlags(fs, args), 1); !ok {
		return code
	}
	rid, code, ok := e.registryArg(fs)
	if !ok {
		return code
	}
	socket := e.socketPath(*socketFlag, *configFlag)
	// The list tells "not logged in" from a real erase, as docker does.
	c, err := e.listRegistries(socket)
	if err != nil {
		return e.fail("%v", err)
	}
	if _, ok := c[rid.Key()]; !ok {
		fmt.Fprintf(e.stdout, "Not logged in to %s\n", rid.Key())
		return exitOK
	}
	if err := e.call(socket, &ipc.Request{Op: ipc.OpErase, ServerURL: rid.Key()}, nil); err != nil {
		return e.fail("%v", err)
	}
	fmt.Fprintf(e.stdout, "Removing login credentials for %s\n", rid.Key())
	return exitOK
}

// listRegistries answers the helper's list verb: registry key → username.
func (e *env) listRegistries(socket string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := client.New(socket).Do(ctx, &ipc.Request{Op: ipc.OpList})
	if err != nil {
		return nil, err
	}
	return resp.Registries, nil
}

// registryArg reads the optional REGISTRY argument: Docker Hub when
// absent; a repository path is dropped, as docker keys logins by host.
func (e *env) registryArg(fs *flag.FlagSet) (resourceid.ID, int, bool) {
	arg := resourceid.DockerHubHost
	if fs.NArg() == 1 {
		arg = fs.Arg(0)
	}
	rid, err := resourceid.Parse(arg)
	if err != nil {
		fmt.Fprintf(e.stderr, "connectord %s: %v\n", fs.Name(), err)
		return resourceid.ID{}, exitUsage, false
	}
	return rid.Registry(), exitOK, true
}

// errNoTTY: a prompt is needed but stdin is no terminal.
var errNoTTY = errors.New("stdin is not a terminal")

// terminal returns stdin when it is a terminal.
func (e *env) terminal() (*os.File, bool) {
	f, ok := e.stdin.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// readCredentials gets the username and password: the password from stdin
// with passStdin, else both from the terminal (the password without
// echo). Like docker, it refuses to prompt when stdin is no terminal.
func (e *env) readCredentials(user string, passStdin bool) (string, secret.Value, error) {
	if passStdin {
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxPasswordLen+1))
		if err != nil {
			return "", secret.Value{}, fmt.Errorf("reading the password from stdin: %w", err)
		}
		if len(b) > maxPasswordLen {
			return "", secret.Value{}, fmt.Errorf("the password on stdin is longer than %d bytes", maxPasswordLen)
		}
		p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if p == "" {
			return "", secret.Value{}, errors.New("the password on stdin is empty")
		}
		return user, secret.New(p), nil
	}
	f, ok := e.terminal()
	if !ok {
		return "", secret.Value{}, errNoTTY
	}
	if user == "" {
		fmt.Fprint(e.stderr, "Username: ")
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && line == "" {
			return "", secret.Value{}, fmt.Errorf("reading the username: %w", err)
		}
		user = strings.TrimSpace(line)
		if user == "" {
			return "", secret.Value{}, errors.New("the username is empty")
		}
	}
	fmt.Fprint(e.stderr, "Password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(e.stderr)
	if err != nil {
		return "", secret.Value{}, fmt.Errorf("reading the password: %w", err)
	}
	if len(b) == 0 {
		return "", secret.Value{}, errors.New("the password is empty")
	}
	return user, secret.New(string(b)), nil
}

// interleaveFlags is describe's interleave for commands whose flags take
// values (`login HOST -u alice`): it moves flags after positional
// arguments to the front, each with its value when the value is a
// separate argument, and ends them with "--".
func interleaveFlags(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(append(flags, "--"), pos...)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
