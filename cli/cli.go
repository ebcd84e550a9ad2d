// Package cli is connectord's command line: `serve` runs the daemon and
// every other command is a client of it over the socket. Conventions:
// data on stdout, diagnostics on stderr, --json where a script reads the
// output, exit 0 on success, 1 on failure, 2 on a usage error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	// exitAlreadyRunning: `serve` found another daemon on its socket.
	// `start` treats it as "someone is starting; keep waiting".
	exitAlreadyRunning = 3
)

// env is the process environment, passed explicitly so tests can run
// commands in-process with their own.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

type command struct {
	name    string
	summary string
	run     func(e *env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the daemon in the foreground", runServe},
		{"start", "start the daemon in the background and wait until it answers", runStart},
		{"stop", "ask the running daemon to shut down", runStop},
		{"status", "show the daemon's version, uptime, config and connectors", runStatus},
		{"list", "list connectors and stored credentials (secrets redacted)", runList},
		{"list-types", "list the connector types, with resource types, auth methods and expiry bounds", runListTypes},
		{"describe-type", "show a connector type's auth methods and config fields (secret ones marked)", runDescribeType},
		{"describe", "show one connector or stored credential (secrets redacted unless --show-secrets)", runDescribe},
		{"verify", "authenticate a connector against its registry and list the repositories it reaches", runVerify},
		{"login", "log in to a registry without a docker engine and store the credentials", runLogin},
		{"logout", "erase a registry's stored credentials", runLogout},
		{"configure-docker", "point ~/.docker/config.json at docker-credential-connector", runConfigureDocker},
		{"import", "move plaintext auths from a docker config.json into connectord's store", runImport},
		{"install-service", "install the systemd user units (connectord.service, connectord.socket)", runInstallService},
		{"version", "print the version", runVersion},
	}
}

// Run runs the command line with args (without the program name) and
// returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return e.run(args)
}

func (e *env) run(args []string) int {
	if len(args) == 0 {
		e.usage(e.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		e.usage(e.stdout)
		return exitOK
	case "--version", "-v":
		return runVersion(e, nil)
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(e.stderr, "connectord: unknown command %q\n\n", args[0])
		e.usage(e.stderr)
		return exitUsage
	}
	return commands()[i].run(e, args[1:])
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: connectord <command> [flags]")
	fmt.Fprintln(w, "\nconnectord owns this machine's container-registry credentials and serves them")
	fmt.Fprintln(w, "to docker, crane, oras, regctl, skopeo and podman through docker-credential-connector.")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-17s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'connectord <command> --help' for a command's flags.")
}

// flagSet builds a command's flags with --help support and usage text.
func (e *env) flagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: connectord %s %s\n\n%s\n", name, synopsis, about)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses flags; it returns (exit code, false) when the command
// must stop: --help (0, usage on stdout) or a bad flag (2).
func (e *env) parse(fs *flag.FlagSet, args []string, maxArgs int) (int, bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(e.stdout)
		fs.Usage()
		return exitOK, false
	}
	if err != nil {
		return exitUsage, false
	}
	if fs.NArg() > maxArgs {
		fmt.Fprintf(e.stderr, "connectord %s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args()[maxArgs:], " "))
		return exitUsage, false
	}
	return exitOK, true
}

func (e *env) fail(format string, args ...any) int {
	fmt.Fprintf(e.stderr, "connectord: "+format+"\n", args...)
	return exitFail
}
