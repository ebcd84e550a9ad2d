package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Output limits.
const (
	// MaxStdout caps what a command may print: credential-helper JSON or
	// a kubelet response is a few kilobytes; more means something is
	// wrong, and the daemon must not buffer without bound.
	MaxStdout = 1 << 20
	// maxStderr caps the stderr kept for error messages (its start).
	maxStderr = 64 << 10
	// maxStderrShown caps the stderr quoted in one error (its end, where
	// the reason usually is).
	maxStderrShown = 1024
	// waitDelay bounds the wait for a child's pipes after it exited or was
	// killed: a grandchild that keeps them open must not hold a fetch.
	waitDelay = time.Second
)

// dockerNotFound is what a docker credential helper prints on stdout,
// with exit status 1, when it has nothing for the registry.
const dockerNotFound = "credentials not found in native keychain"

// redactedMark replaces a secret found in a command's stderr.
const redactedMark = "[REDACTED]"

// lookupEnv is the daemon's environment; replaced in tests.
var lookupEnv = os.LookupEnv

// childEnv builds a child's whole environment: PATH and HOME from the
// daemon (so helpers find their tools and their config), the variables
// named in pass, then extra. Nothing else of the daemon's environment is
// passed: it may hold secrets meant for the daemon alone.
func childEnv(lookup func(string) (string, bool), pass []string, extra map[string]string) []string {
	vals := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, k := range append([]string{"PATH", "HOME"}, pass...) {
		if v, ok := lookup(k); ok {
			set(k, v)
		}
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH", "/usr/local/bin:/usr/bin:/bin")
	}
	for _, k := range slices.Sorted(mapKeys(extra)) {
		set(k, extra[k])
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vals[k])
	}
	return env
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// lookPath finds name as exec.LookPath would, but on the child's PATH: a
// config that sets env.PATH means the command is found there.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q not found in PATH %q", name, path)
}

// output is what one run produced.
type output struct {
	stdout   []byte
	stderr   []byte
	duration time.Duration
}

// failure is a run that did not succeed: it could not start, timed out,
// exited non-zero or printed too much.
type failure struct {
	msg      string
	err      error
	notFound bool // a docker helper's exact not-found answer
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

func asFailure(err error, target **failure) bool { return errors.As(err, target) }

// cappedBuffer keeps the first limit bytes and counts the rest, so a
// child that prints too much is neither blocked nor buffered without
// bound.
type cappedBuffer struct {
	buf      bytes.Buffer
	limit    int
	overflow int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := max(b.limit-b.buf.Len(), 0); room < n {
		b.overflow += int64(n - room)
		p = p[:room]
	}
	b.buf.Write(p)
	// Claim all of p: the rest is discarded on purpose, and an error
	// would only make the child see a broken pipe.
	return n, nil
}

// run starts the command with stdin and waits for it, within the
// connector's timeout.
func (c *Connector) run(ctx context.Context, stdin []byte) (*output, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	prog, err := lookPath(c.argv[0], c.env)
	if err != nil {
		return nil, &failure{msg: fmt.Sprintf("command %s: %v", c.argv[0], err), err: err}
	}
	cmd := osexec.CommandContext(ctx, prog, c.argv[1:]...)
	cmd.Env = c.env
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(stdin)
	stdout := &cappedBuffer{limit: MaxStdout}
	stderr := &cappedBuffer{limit: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = waitDelay
	setProcessGroup(cmd)
	start := time.Now()
	err = cmd.Run()
	out := &output{stdout: stdout.buf.Bytes(), stderr: stderr.buf.Bytes(), duration: time.Since(start)}
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && err != nil:
		return nil, c.failWith(out, fmt.Sprintf("command %s timed out after %s", c.argv[0], c.timeout), ctx.Err(), "")
	case err != nil:
		var ee *osexec.ExitError
		if errors.As(err, &ee) {
			f := c.failWith(out, fmt.Sprintf("command %s failed: %s", c.argv[0], ee.ProcessState), err, stdoutSecrets(out.stdout)...)
			// docker helpers answer "not found" on stdout; that fixed
			// text is the only stdout an error may repeat.
			f.notFound = strings.TrimSpace(string(out.stdout)) == dockerNotFound
			return nil, f
		}
		return nil, c.failWith(out, fmt.Sprintf("command %s: %v", c.argv[0], err), err, "")
	case stdout.overflow > 0:
		return nil, c.failWith(out, fmt.Sprintf("command %s printed more than %d bytes", c.argv[0], MaxStdout), nil, stdoutSecrets(out.stdout)...)
	}
	return out, nil
}

// failWith builds a failure quoting the command's stderr with secrets
// redacted.
func (c *Connector) failWith(out *output, msg string, err error, secrets ...string) *failure {
	if s := stderrText(out.stderr, secrets...); s != "" {
		msg += "; stderr: " + s
	}
	return &failure{msg: msg, err: err}
}

// outputError reports output the command printed but that is unusable.
// It quotes stderr (which may explain), never stdout (which may hold a
// secret).
func (c *Connector) outputError(err error, out *output, secret string) error {
	msg := fmt.Sprintf("command %s: %v", c.argv[0], err)
	secrets := append(stdoutSecrets(out.stdout), secret)
	if s := stderrText(out.stderr, secrets...); s != "" {
		msg += "; stderr: " + s
	}
	return &failure{msg: msg, err: err}
}

// stderrText makes stderr fit in one error line: secrets redacted,
// invalid UTF-8 and control characters replaced, whitespace collapsed,
// and cut to its last maxStderrShown bytes.
func stderrText(b []byte, secrets ...string) string {
	s := string(b)
	for _, sec := range secrets {
		if len(sec) >= 1 {
			s = strings.ReplaceAll(s, sec, redactedMark)
		}
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) && !unicode.IsSpace(r) {
			return '\uFFFD'
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxStderrShown {
		i := len(s) - maxStderrShown
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		s = "..." + s[i:]
	}
	return s
}

// stdoutSecrets returns, best effort, the secret values in a command's
// JSON output, so that stderr quoting one of them is redacted even when
// the output as a whole was rejected.
func stdoutSecrets(b []byte) []string {
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				walk(k, e)
			}
		case []any:
			for _, e := range t {
				walk(key, e)
			}
		case string:
			switch strings.ToLower(key) {
			case "secret", "password", "auth", "identitytoken", "registrytoken", "token":
				if t != "" {
					out = append(out, t)
				}
			}
		}
	}
	walk("", doc)
	return out
}
