package client_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The credential helper links ipc and ipc/client, and its whole-process
// start-up time is benchmarked against a minimal Go program. Every package
// below adds binary size and init work to every docker pull; this test
// keeps them out.
var (
	forbiddenPackages = []string{
		"net/http",
		"crypto/tls",
		"log/slog",
		"github.com/BurntSushi/toml",
		"github.com/fsnotify/fsnotify",
		"github.com/docker/docker",
		"golang.org/x/sys/unix",
	}
	// Whole trees: anything under these is as heavy.
	forbiddenPrefixes = []string{
		"net/http/",
		"crypto/",
		"github.com/docker/docker/",
		"golang.org/x/sys/",
	}
)

func TestClientDependencies(t *testing.T) {
	t.Parallel()
	gotool, err := exec.LookPath("go")
	if err != nil {
		// internal/testenv's rule: CI=true turns a missing tool into a failure.
		if os.Getenv("CI") == "true" {
			t.Fatalf("go tool not found: %v", err)
		}
		t.Skipf("go tool not found: %v", err)
	}
	const pkg = "github.com/connectord/connectord/ipc/client"
	out, err := exec.Command(gotool, "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 || deps[len(deps)-1] != pkg {
		t.Fatalf("unexpected go list output:\n%s", out)
	}
	for _, dep := range deps {
		for _, bad := range forbiddenPackages {
			if dep == bad {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
		for _, prefix := range forbiddenPrefixes {
			if strings.HasPrefix(dep, prefix) {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
	if t.Failed() {
		t.Logf("run `go list -deps -f '{{.ImportPath}}: {{.Imports}}' %s` to find the importer", pkg)
	}
}
