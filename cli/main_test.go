package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestMain owns the directory the real binaries are built into (lazily,
// by builtBinaries, so tests that run the CLI in-process pay nothing).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connectord-cli-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cli tests: %v\n", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

// builtBinaries builds connectord and docker-credential-connector from
// this repository once per test process and returns their directory.
// They are built without -race: the daemon's code runs under -race in its
// own package's tests, and e2e builds race-enabled binaries.
func builtBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../cmd/connectord", "../cmd/docker-credential-connector")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}
