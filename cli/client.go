package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/atomicfile"
	"github.com/connectord/connectord/internal/version"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// socketPath resolves the socket as the daemon would: flag, then
// $CONNECTORD_SOCKET, then the config file's [daemon] socket, then the
// XDG default.
func (e *env) socketPath(socketFlag, configFlag string) string {
	if socketFlag != "" || e.getenv("CONNECTORD_SOCKET") != "" {
		return e.resolvePaths(configFlag, socketFlag, "", nil).socket
	}
	f, _ := config.Load(e.resolvePaths(configFlag, "", "", nil).config)
	return e.resolvePaths(configFlag, "", "", f).socket
}

// call sends one request and decodes the response's Data into out.
func (e *env) call(socket string, req *ipc.Request, out any) error {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := client.New(socket).Do(ctx, req)
	if err != nil {
		return err
	}
	if out != nil && len(resp.Data) > 0 {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			return fmt.Errorf("decoding the daemon's answer: %w", err)
		}
	}
	return nil
}

func runStart(e *env, args []string) int {
	fs := e.flagSet("start", "[flags]", "Start the daemon in the background (detached, logging to a file) and wait\nuntil it answers on its socket. Does nothing if it is already running.")
	configFlag := fs.String("config", "", "config file (default $CONNECTORD_CONFIG or $XDG_CONFIG_HOME/connectord/config.toml)")
	socketFlag := fs.String("socket", "", "socket path")
	storeFlag := fs.String("store", "", "stored-credentials file")
	logFlag := fs.String("log-file", "", "daemon log file (default $XDG_STATE_HOME/connectord/connectord.log)")
	wait := fs.Duration("wait", 5*time.Second, "how long to wait for the daemon to answer")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	socket := e.socketPath(*socketFlag, *configFlag)
	if e.ping(socket) == nil {
		fmt.Fprintf(e.stderr, "connectord is already running on %s\n", socket)
		return exitOK
	}
	logPath := *logFlag
	if logPath == "" {
		logPath = filepath.Join(config.StateDir(e.getenv), "connectord.log")
	}
	if err := atomicfile.EnsureDir(filepath.Dir(logPath)); err != nil {
		return e.fail("%v", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return e.fail("opening the daemon log: %v", err)
	}
	defer logFile.Close()
	self, err := os.Executable()
	if err != nil {
		return e.fail("finding connectord's own binary: %v", err)
	}
	serveArgs := []string{"serve", "--socket", socket}
	if *configFlag != "" {
		serveArgs = append(serveArgs, "--config", *configFlag)
	}
	if *storeFlag != "" {
		serveArgs = append(serveArgs, "--store", *storeFlag)
	}
	cmd := exec.Command(self, serveArgs...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A new session: the daemon must outlive the helper or shell that
	// started it, and not get its terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return e.fail("starting the daemon: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(*wait)
	for {
		if e.ping(socket) == nil {
			fmt.Fprintf(e.stderr, "connectord started (pid %d) on %s; log: %s\n", cmd.Process.Pid, socket, logPath)
			return exitOK
		}
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == exitAlreadyRunning {
				// Lost a race with another starter, which holds the
				// socket's lock but may not answer yet: keep waiting.
				exited = nil
				continue
			}
			if e.ping(socket) == nil {
				return exitOK
			}
			return e.fail("the daemon exited (%v); its log %s ends with:\n%s", err, logPath, tail(logPath, 20))
		case <-deadline:
			return e.fail("the daemon did not answer on %s within %s; see %s", socket, *wait, logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *env) ping(socket string) error {
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	_, err := client.New(socket).Do(ctx, &ipc.Request{Op: ipc.OpPing})
	return err
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func runStop(e *env, args []string) int {
	fs := e.flagSet("stop", "[flags]", "Ask the running daemon to shut down, and wait until it has.")
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	socket := e.socketPath(*socketFlag, *configFlag)
	if err := e.call(socket, &ipc.Request{Op: ipc.OpShutdown}, nil); err != nil {
		if client.IsNotRunning(err) {
			fmt.Fprintf(e.stderr, "connectord is not running on %s\n", socket)
			return exitOK
		}
		return e.fail("%v", err)
	}
	for range 250 {
		if client.IsNotRunning(e.ping(socket)) {
			return exitOK
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e.fail("the daemon did not stop within 5s")
}

func runStatus(e *env, args []string) int {
	fs := e.flagSet("status", "[flags]", "Show the running daemon's version, uptime, config and store, the last config\nload's result and each connector.")
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	socket := e.socketPath(*socketFlag, *configFlag)
	var st daemon.Status
	if err := e.call(socket, &ipc.Request{Op: ipc.OpStatus}, &st); err != nil {
		return e.fail("%v", err)
	}
	var infos []connectors.Info
	if err := e.call(socket, &ipc.Request{Op: ipc.OpConnectors}, &infos); err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		return e.printJSON(struct {
			daemon.Status
			Connectors []connectors.Info `json:"connectors"`
		}{st, infos})
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "version:\t%s\n", st.Version)
	fmt.Fprintf(w, "pid:\t%d\n", st.PID)
	fmt.Fprintf(w, "uptime:\t%s (since %s)\n", st.Uptime, st.StartedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "socket:\t%s\n", socket)
	fmt.Fprintf(w, "config:\t%s\n", st.ConfigPath)
	fmt.Fprintf(w, "store:\t%s (%d credentials)\n", st.StorePath, st.Stored)
	if l := st.LastLoad; l != nil {
		state := "ok"
		if !l.OK {
			state = "FAILED: " + l.Error
		}
		fmt.Fprintf(w, "last load:\t%s at %s (%d connectors)\n", state, l.At.Format(time.RFC3339), l.Connectors)
	}
	_ = w.Flush()
	fmt.Fprintln(e.stdout)
	e.printConnectors(infos)
	return exitOK
}

func runList(e *env, args []string) int {
	fs := e.flagSet("list", "[flags]", "List the connectors from the config and the credentials stored through\n`docker login`. Secrets are never shown.")
	socketFlag := fs.String("socket", "", "socket path")
	configFlag := fs.String("config", "", "config file (for its [daemon] socket)")
	asJSON := fs.Bool("json", false, "print JSON: an array of objects with name, type, auth_method, resource_type, resource_id, expires_at, origin")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	var infos []connectors.Info
	if err := e.call(e.socketPath(*socketFlag, *configFlag), &ipc.Request{Op: ipc.OpConnectors}, &infos); err != nil {
		return e.fail("%v", err)
	}
	if *asJSON {
		if infos == nil {
			infos = []connectors.Info{}
		}
		return e.printJSON(infos)
	}
	e.printConnectors(infos)
	return exitOK
}

func (e *env) printConnectors(infos []connectors.Info) {
	if len(infos) == 0 {
		fmt.Fprintln(e.stderr, "no connectors and no stored credentials")
		return
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	// The refresh columns come last so that scripts reading the first
	// seven keep working; they show "-" for connectors that do not expire.
	fmt.Fprintln(w, "NAME\tTYPE\tAUTH METHOD\tRESOURCE TYPE\tRESOURCE ID\tEXPIRES\tORIGIN\tLAST REFRESH\tNEXT REFRESH\tLAST ERROR")
	for _, i := range infos {
		exp := "never"
		switch {
		case i.ExpiresAt != nil:
			exp = i.ExpiresAt.Format(time.RFC3339)
		case i.ExpirationSeconds != nil && i.Origin == "config":
			exp = "not fetched yet" // an expiring connector nobody asked yet
		}
		lastErr := "-"
		if i.LastError != "" {
			lastErr = i.LastError
			if len(lastErr) > 100 {
				lastErr = strings.ToValidUTF8(lastErr[:97], "") + "..."
			}
			if i.LastErrorAt != nil {
				lastErr = i.LastErrorAt.Format(time.RFC3339) + " " + lastErr
			}
			if i.Attempts > 0 {
				lastErr = fmt.Sprintf("(%d failed since last success) %s", i.Attempts, lastErr)
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Name, i.Type, i.AuthMethod, i.ResourceType, i.ResourceID, exp, i.Origin,
			timeOrDash(i.LastRefresh), timeOrDash(i.NextRefresh), lastErr)
	}
	_ = w.Flush()
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func (e *env) printJSON(v any) int {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail("encoding JSON: %v", err)
	}
	_, _ = e.stdout.Write(buf.Bytes())
	return exitOK
}

func runVersion(e *env, args []string) int {
	fs := e.flagSet("version", "", "Print connectord's version.")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}
	fmt.Fprintf(e.stdout, "connectord %s\n", version.Version)
	return exitOK
}
