// Package e2e is connectord's end-to-end suite: the real daemon and the
// real credential helper, built from this repository, serving real
// clients (crane, oras, regctl, skopeo, podman, the docker CLI) against
// real docker-registry servers on loopback that the tests start and stop.
//
// TestMain builds both binaries once, runs the tests, and then scans every
// daemon log and every command output the suite produced for every
// password the suite used (see secrets_test.go).
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds connectord and docker-credential-connector, built by
// TestMain from this repository.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "connectord-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	binDir = dir

	code := m.Run()

	// The scan runs after every test, parallel ones included, has finished
	// and recorded its outputs; a hit fails the run whatever the tests said.
	if hits := scanForSecrets(); len(hits) > 0 {
		fmt.Fprintf(os.Stderr, "--- FAIL: secret scan: %d output(s) contain a test password:\n", len(hits))
		for _, h := range hits {
			fmt.Fprintf(os.Stderr, "    %s\n", h)
		}
		fmt.Println("FAIL")
		return 1
	}
	if code == 0 && testing.Verbose() {
		n, s := recorded()
		fmt.Printf("e2e: secret scan: %d outputs and daemon logs scanned for %d secrets, no hit\n", n, s)
	}
	return code
}

// buildBinaries builds both commands from the repository root (the parent
// of this package) into dir, with the race detector when this test binary
// has it: a data race in the daemon then makes it exit 66, which the
// harness's exit-status check reports.
func buildBinaries(dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building the binaries needs the go command on PATH: %w", err)
	}
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", dir+string(filepath.Separator), "./cmd/connectord", "./cmd/docker-credential-connector")
	cmd := exec.Command(goBin, args...)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, out)
	}
	for _, name := range []string{"connectord", "docker-credential-connector"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("go build produced no %s: %w", name, err)
		}
	}
	return nil
}
