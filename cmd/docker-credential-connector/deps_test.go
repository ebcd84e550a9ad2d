package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// docker starts this helper for every pull, so everything it links is
// paid for on every pull (binary size, package init). Like tailscale's
// deps_test, this fails on any import outside a short allowlist: the
// standard library minus its heavy corners, docker's credentials package,
// and connectord's client side.
var (
	allowedModules = []string{
		"github.com/docker/docker-credential-helpers/credentials",
		"github.com/connectord/connectord/credhelper",
		"github.com/connectord/connectord/ipc",
		"github.com/connectord/connectord/ipc/blocking",
		"github.com/connectord/connectord/internal/version",
		"github.com/connectord/connectord/cmd/docker-credential-connector",
	}
	// Standard-library packages that would make the helper heavy, named
	// so the failure says why: HTTP (TLS, compression, mime), structured
	// logging, and all of crypto.
	// "net" itself too: the helper's transport (ipc/blocking) uses plain
	// system calls, which saves the net package's init and the runtime's
	// network poller on every pull.
	forbiddenStd = []string{"net", "net/http", "crypto/", "log/slog", "compress/", "mime", "text/template", "html/"}
)

func TestHelperDependencies(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool not found: %v", err)
		}
		t.Skipf("go tool not found: %v", err)
	}
	out, err := exec.Command(gotool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{end}}std:{{.Standard}} {{.ImportPath}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 20 {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, line := range lines {
		f := strings.Fields(line)
		pkg := f[len(f)-1]
		if f[len(f)-2] == "std:true" {
			for _, bad := range forbiddenStd {
				if pkg == bad || bad != "net" && strings.HasPrefix(pkg, bad) {
					t.Errorf("the helper links %s (heavy standard-library package)", pkg)
				}
			}
			continue
		}
		allowed := false
		for _, a := range allowedModules {
			if pkg == a {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("the helper links %s: not on the allowlist (TOML, fsnotify, github.com/docker/docker, cloud SDKs and HTTP belong in the daemon)", pkg)
		}
	}
}
