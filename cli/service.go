package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/connectord/connectord/config"
	units "github.com/connectord/connectord/contrib/systemd"
	"github.com/connectord/connectord/internal/atomicfile"
)

// defaultReadWritePaths is the sandbox drop-in's line as shipped; it
// names the default store directory.
const defaultReadWritePaths = "ReadWritePaths=%h/.local/state/connectord %t/connectord"

func runInstallService(e *env, args []string) int {
	flags := e.flagSet("install-service", "[flags]", `Install connectord's systemd user units (connectord.service, Type=notify,
and connectord.socket, for socket activation) into ~/.config/systemd/user,
with ExecStart pointing at this connectord binary. It runs no systemctl:
it prints the command that enables the units. Files that already have the
right content are left alone.`)
	unitDir := flags.String("unit-dir", "", "write the units into `DIR` (default $XDG_CONFIG_HOME/systemd/user, else ~/.config/systemd/user)")
	prefix := flags.String("prefix", "", "run `DIR`/bin/connectord instead of this binary, where make install PREFIX=DIR puts it")
	sandbox := flags.Bool("sandbox", false, "also install connectord.service.d/sandbox.conf: ProtectSystem=strict and friends (needs unprivileged user namespaces; see the file)")
	dryRun := flags.Bool("dry-run", false, "print the units and where they would go; write nothing")
	if code, ok := e.parse(flags, args, 0); !ok {
		return code
	}

	exe, err := e.serviceBinary(*prefix)
	if err != nil {
		return e.fail("%v", err)
	}
	dir := *unitDir
	if dir == "" {
		dir = e.userUnitDir()
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return e.fail("unit directory: %v", err)
	}

	type unitFile struct {
		name string
		data []byte
	}
	service, err := renderService(exe)
	if err != nil {
		return e.fail("%v", err)
	}
	socket, err := units.File(units.Socket)
	if err != nil {
		return e.fail("reading the embedded socket unit: %v", err)
	}
	todo := []unitFile{{units.Service, service}, {units.Socket, socket}}
	var warnings []string
	if *sandbox {
		data, w, err := e.renderSandbox()
		if err != nil {
			return e.fail("%v", err)
		}
		warnings = append(warnings, w...)
		todo = append(todo, unitFile{units.SandboxDropIn, data})
	} else if _, err := os.Stat(filepath.Join(dir, units.SandboxDropIn)); err == nil {
		warnings = append(warnings, fmt.Sprintf("%s is installed and stays in force; remove it to turn the sandbox off", filepath.Join(dir, units.SandboxDropIn)))
	}
	warnings = append(warnings, e.serviceEnvWarnings()...)

	for _, u := range todo {
		path := filepath.Join(dir, u.name)
		if *dryRun {
			fmt.Fprintf(e.stdout, "# %s (dry run: not written)\n%s\n", path, u.data)
			continue
		}
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, u.data) {
			fmt.Fprintf(e.stdout, "unchanged %s\n", path)
			continue
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return e.fail("reading %s: %v", path, err)
		}
		// Unit files are configuration, not secrets: 0644 in 0755
		// directories, as systemctl edit writes them.
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return e.fail("creating %s: %v", filepath.Dir(path), err)
		}
		if err := atomicfile.WriteFile(path, u.data, 0o644); err != nil {
			return e.fail("%v", err)
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", path)
	}
	e.printWarnings(warnings)
	fmt.Fprintf(e.stdout, "ExecStart runs %s serve\n", exe)
	fmt.Fprintln(e.stdout, "\nNext: stop a daemon started by hand or by the helper (connectord stop), then")
	fmt.Fprintln(e.stdout, "  systemctl --user daemon-reload && systemctl --user enable --now connectord.socket")
	return exitOK
}

// serviceBinary is the connectord the unit runs: DIR/bin/connectord with
// --prefix, else this very binary.
func (e *env) serviceBinary(prefix string) (string, error) {
	var exe string
	if prefix != "" {
		p, err := filepath.Abs(filepath.Join(prefix, "bin", "connectord"))
		if err != nil {
			return "", fmt.Errorf("--prefix: %w", err)
		}
		exe = p
	} else {
		p, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding connectord's own binary: %w", err)
		}
		// `go run` builds into a cache directory that is removed when it
		// exits: a unit pointing there fails at its first start.
		if strings.Contains(p, string(filepath.Separator)+"go-build") {
			return "", fmt.Errorf("connectord runs from a temporary build (%s); install it (make install) and run the installed one, or pass --prefix", p)
		}
		exe = p
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return "", fmt.Errorf("the unit would run %s: %w", exe, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("the unit would run %s, which is not an executable file", exe)
	}
	return exe, nil
}

// userUnitDir is where a user's own units live.
func (e *env) userUnitDir() string {
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "systemd", "user")
	}
	home := e.getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".config", "systemd", "user")
}

// renderService is the shipped service unit with ExecStart running exe.
func renderService(exe string) ([]byte, error) {
	data, err := units.File(units.Service)
	if err != nil {
		return nil, fmt.Errorf("reading the embedded service unit: %w", err)
	}
	word, err := unitPath(exe)
	if err != nil {
		return nil, fmt.Errorf("the unit cannot run %s: %w", exe, err)
	}
	if !bytes.Contains(data, []byte(units.DefaultExecStart+"\n")) {
		return nil, errors.New("the embedded service unit has no default ExecStart line to replace")
	}
	return bytes.Replace(data, []byte(units.DefaultExecStart+"\n"), []byte("ExecStart="+word+" serve\n"), 1), nil
}

// renderSandbox is the sandbox drop-in with ReadWritePaths naming the
// directory of the store this user's daemon writes, and creates that
// directory: ReadWritePaths= fails the start when a path is missing, and
// under ProtectSystem=strict the daemon could not create it itself.
func (e *env) renderSandbox() ([]byte, []string, error) {
	data, err := units.File(units.SandboxDropIn)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the embedded sandbox drop-in: %w", err)
	}
	f, _ := config.Load(config.DefaultPath(e.getenv))
	storeDir := filepath.Dir(e.resolvePaths("", "", "", f).store)
	var warnings []string
	if f != nil && f.Daemon.StoreBackend != "" && f.Daemon.StoreBackend != "file" {
		warnings = append(warnings, fmt.Sprintf("the %q store backend writes outside %s (its own directories, gpg's or the keyring's); add them to ReadWritePaths= in the sandbox drop-in or the daemon cannot store credentials", f.Daemon.StoreBackend, storeDir))
	}
	if home := e.getenv("HOME"); storeDir != filepath.Join(home, ".local", "state", "connectord") {
		word, err := unitPath(storeDir)
		if err != nil {
			return nil, nil, fmt.Errorf("the sandbox cannot name the store directory: %w", err)
		}
		data = bytes.Replace(data, []byte(defaultReadWritePaths), []byte("ReadWritePaths="+word+" %t/connectord"), 1)
	}
	if err := atomicfile.EnsureDir(storeDir); err != nil {
		return nil, nil, err
	}
	return data, warnings, nil
}

// unitPath writes path as one word of a unit file: specifiers escaped
// (% as %%), quoted when it holds a space. Characters that would need
// more than that are refused rather than risked.
func unitPath(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s is not an absolute path", path)
	}
	if strings.ContainsAny(path, "\"'\\$;") || strings.ContainsFunc(path, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%q holds a character that a unit file would reinterpret (quote, backslash, $, ; or a control character); install connectord under a plainer path", path)
	}
	w := strings.ReplaceAll(path, "%", "%%")
	if strings.ContainsAny(w, " \t") {
		w = `"` + w + `"`
	}
	return w, nil
}

// serviceEnvWarnings names settings of this shell that a daemon started
// by systemd will not see, so that its clients and it would disagree.
func (e *env) serviceEnvWarnings() []string {
	var out []string
	for _, k := range []string{"CONNECTORD_CONFIG", "CONNECTORD_SOCKET", "XDG_STATE_HOME"} {
		if v := e.getenv(k); v != "" {
			out = append(out, fmt.Sprintf("%s=%s is set here but not in systemd's user manager; the service will not see it (systemctl --user set-environment %s=..., or an Environment= drop-in)", k, v, k))
		}
	}
	if rt := e.getenv("XDG_RUNTIME_DIR"); rt != "" && e.getenv("CONNECTORD_SOCKET") == "" {
		want := filepath.Join(rt, "connectord", "connectord.sock")
		if got := e.socketPath("", ""); got != want {
			out = append(out, fmt.Sprintf("connectord's config names the socket %s, but connectord.socket listens on %s; change one of them", got, want))
		}
	}
	return out
}
