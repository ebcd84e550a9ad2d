package exec_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Paths set up by TestMain.
var (
	// scripts holds the test programs the unit tests run.
	scripts string
	// binDir holds connectord, docker-credential-connector and issuer,
	// built for the integration tests ("" with -short or -fuzz).
	binDir string
)

// answerScript is a stand-in for any credential program: it saves its
// stdin, arguments and environment under $OUT_DIR, prints $ERR to stderr
// and $ANSWER to stdout, sleeps $SLEEP seconds if set and exits $CODE.
const answerScript = `#!/bin/sh
if [ -n "$OUT_DIR" ]; then
	cat > "$OUT_DIR/stdin"
	env > "$OUT_DIR/env"
	printf '%s\n' "$@" > "$OUT_DIR/args"
else
	cat > /dev/null
fi
[ -n "$ERR" ] && printf '%s\n' "$ERR" >&2
[ -n "$SLEEP" ] && sleep "$SLEEP"
printf '%s' "$ANSWER"
exit "${CODE:-0}"
`

// bigScript prints more than the connector accepts.
const bigScript = `#!/bin/sh
cat > /dev/null
head -c 2000000 /dev/zero | tr '\0' a
`

// kubePlugin is a kubelet credential provider plugin: it appends each
// request to $PLUGIN_LOG and answers with $PLUGIN_API_VERSION,
// $PLUGIN_KEY_TYPE, $PLUGIN_DURATION and one auth entry $PLUGIN_KEY for
// $PLUGIN_USER with the password read from $PLUGIN_PASSWORD_FILE.
const kubePlugin = `#!/bin/sh
req=$(cat)
printf '%s\n' "$req" >> "$PLUGIN_LOG"
pw=$(cat "$PLUGIN_PASSWORD_FILE")
printf '{"apiVersion":"%s","kind":"CredentialProviderResponse","cacheKeyType":"%s","cacheDuration":"%s","auth":{"%s":{"username":"%s","password":"%s"}}}\n' \
	"$PLUGIN_API_VERSION" "$PLUGIN_KEY_TYPE" "$PLUGIN_DURATION" "$PLUGIN_KEY" "$PLUGIN_USER" "$pw"
`

// TestMain writes the test scripts once, before any test runs: writing an
// executable while another test forks can make exec fail with "text file
// busy". It builds the binaries the integration tests run, unless the run
// is -short or fuzzing.
func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "connectord-exec-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := setup(dir)
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) int {
	scripts = filepath.Join(dir, "scripts")
	if err := os.Mkdir(scripts, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for name, body := range map[string]string{"answer": answerScript, "big": bigScript, "benchsource": benchSource, "kubeplugin": kubePlugin} {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(body), 0o700); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if testing.Short() || flag.Lookup("test.fuzz").Value.String() != "" {
		return 0
	}
	binDir = filepath.Join(dir, "bin")
	for _, b := range [][]string{
		{"build", "-o", binDir + "/", "../../cmd/connectord", "../../cmd/docker-credential-connector"},
		{"build", "-o", filepath.Join(binDir, "issuer"), "./testdata/issuer"},
	} {
		out, err := exec.Command("go", b...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go %v: %v\n%s", b, err, out)
			return 1
		}
	}
	return 0
}

func script(name string) string { return filepath.Join(scripts, name) }
