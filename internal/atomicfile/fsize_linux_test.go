package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const fsizeChildEnv = "ATOMICFILE_TEST_FSIZE_CHILD"

// A write that really fails, as root: RLIMIT_FSIZE makes write(2) return
// EFBIG past the limit (the Go runtime catches SIGXFSZ, so the process is
// not killed). The limit is process-wide, so it is set in a child copy of
// this test binary rather than here, where parallel tests write files.
func TestWriteFileWriteFailureKeepsOldFile(t *testing.T) {
	if path := os.Getenv(fsizeChildEnv); path != "" {
		fsizeChild(t, path)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "file.json")
	old := []byte(`{"old":true}`)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteFileWriteFailureKeepsOldFile$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	// Guard against a child that silently did nothing.
	if !strings.Contains(string(out), "child: write failed with EFBIG") {
		t.Fatalf("child did not report the failed write:\n%s", out)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Errorf("old file = %q, want %q", got, old)
	}
	if n := names(t, dir); !slices.Equal(n, []string{"file.json"}) {
		t.Errorf("directory holds %q, want only file.json (temp file left behind?)", n)
	}
}

func fsizeChild(t *testing.T, path string) {
	const limit = 1024
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &rl); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, bytes.Repeat([]byte("n"), 64*limit), 0o600)
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("WriteFile past RLIMIT_FSIZE: err = %v, want EFBIG", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "write") {
		t.Fatalf("error %q does not name the path and the write", err)
	}
	fmt.Println("child: write failed with EFBIG:", err)
}
