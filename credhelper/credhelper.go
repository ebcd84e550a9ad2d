// Package credhelper is the helper side of connectord: a stateless
// implementation of docker-credential-helpers' credentials.Helper in which
// each verb is one round trip to the daemon over its Unix socket. It
// keeps the process lean (no TOML, no HTTP, no logging framework) because
// docker starts it for every pull.
//
// When the daemon is not running the helper starts it (`connectord start`,
// found next to the helper's own binary, else on PATH) and retries for up
// to AutostartWait; CONNECTORD_NO_AUTOSTART=1 turns this off. If the
// daemon still cannot be reached the helper fails with an error naming the
// socket: deliberately not a not-found, because docker would then pull
// anonymously and report a confusing authorization failure.
package credhelper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/blocking"
)

// NotFoundMessage is the exact text docker matches to fall back to
// anonymous access (credentials.IsErrCredentialsNotFoundMessage).
const NotFoundMessage = "credentials not found in native keychain"

// AutostartWait bounds how long a helper call waits for a daemon it
// started.
const AutostartWait = 2 * time.Second

// requestTimeout bounds one call; the daemon's own fetch bound is shorter,
// so a timeout here means the daemon is wedged, not slow.
const requestTimeout = 30 * time.Second

// transport is one exchange with the daemon; ipc/blocking in production,
// chosen because it keeps package net and the runtime's network poller
// out of a process that docker starts for every pull.
type transport interface {
	Do(ctx context.Context, req *ipc.Request) (*ipc.Response, error)
	Path() string
}

// Helper implements credentials.Helper against the daemon.
type Helper struct {
	client    transport
	autostart bool
	// start launches the daemon; replaced in tests.
	start func(ctx context.Context, socket string) error
}

var _ credentials.Helper = (*Helper)(nil)

// New returns a helper talking to the daemon at the socket the daemon
// itself would use (see ipc.SocketPath).
func New(getenv func(string) string) *Helper {
	return &Helper{
		client:    blocking.New(ipc.SocketPath(getenv)),
		autostart: getenv("CONNECTORD_NO_AUTOSTART") != "1",
		start:     startDaemon,
	}
}

// Add implements credentials.Helper (the store verb).
func (h *Helper) Add(c *credentials.Credentials) error {
	_, err := h.do(&ipc.Request{Op: ipc.OpStore, ServerURL: c.ServerURL, Username: c.Username, Secret: c.Secret})
	return err
}

// Delete implements credentials.Helper (the erase verb).
func (h *Helper) Delete(serverURL string) error {
	_, err := h.do(&ipc.Request{Op: ipc.OpErase, ServerURL: serverURL})
	return err
}

// Get implements credentials.Helper.
func (h *Helper) Get(serverURL string) (string, string, error) {
	resp, err := h.do(&ipc.Request{Op: ipc.OpGet, ServerURL: serverURL})
	if err != nil {
		return "", "", err
	}
	return resp.Username, resp.Secret, nil
}

// List implements credentials.Helper.
func (h *Helper) List() (map[string]string, error) {
	resp, err := h.do(&ipc.Request{Op: ipc.OpList})
	if err != nil {
		return nil, err
	}
	if resp.Registries == nil {
		return map[string]string{}, nil
	}
	return resp.Registries, nil
}

func (h *Helper) do(req *ipc.Request) (*ipc.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := h.client.Do(ctx, req)
	if ipc.IsNotRunning(err) && h.autostart {
		resp, err = h.startAndRetry(ctx, req, err)
	}
	return resp, translate(err)
}

func (h *Helper) startAndRetry(ctx context.Context, req *ipc.Request, first error) (*ipc.Response, error) {
	if err := h.start(ctx, h.client.Path()); err != nil {
		return nil, fmt.Errorf("%w; starting it failed: %v", first, err)
	}
	deadline := time.Now().Add(AutostartWait)
	for {
		resp, err := h.client.Do(ctx, req)
		if !ipc.IsNotRunning(err) || time.Now().After(deadline) {
			return resp, err
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// translate turns daemon errors into what docker expects on stdout:
// the exact not-found text, or the daemon's own message.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ipc.ErrNotFound) {
		return credentials.NewErrCredentialsNotFound()
	}
	var ie *ipc.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("connectord: %s", ie.Message)
	}
	return err
}

// startDaemon runs `connectord start`, which detaches a daemon and
// returns once it answers (or fails with the daemon's own complaint).
func startDaemon(ctx context.Context, socket string) error {
	bin, err := daemonBinary()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, AutostartWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "start", "--socket", socket, "--wait", AutostartWait.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s start: %w: %s", bin, err, trimOutput(out))
	}
	return nil
}

func daemonBinary() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "connectord")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("connectord")
	if err != nil {
		return "", errors.New("connectord not found next to docker-credential-connector or on PATH")
	}
	return p, nil
}

func trimOutput(b []byte) string {
	const max = 512
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
