// Package client is the typed client of the connectord socket, used by the
// docker credential helper and by the connectord CLI: dial, write one
// request, read one response, close.
//
// It is linked into the credential helper, a process started for every
// registry operation, so like package ipc it imports only light standard
// library packages (deps_test.go enforces it). There is no connection
// reuse: a helper process makes one call and exits, and a fresh connection
// per call keeps the daemon side free of per-connection state.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/connectord/connectord/ipc"
)

// Default timeouts. Connecting to a local socket is immediate when the
// daemon is there, so DialTimeout only guards against a wedged daemon whose
// accept backlog is full. IOTimeout is generous because a get may make the
// daemon talk to a registry or a cloud API before it can answer.
const (
	DefaultDialTimeout = 1 * time.Second
	DefaultIOTimeout   = 30 * time.Second
)

// Client talks to the daemon at one socket path. It holds no connection and
// is safe for concurrent use.
type Client struct {
	path        string
	dialTimeout time.Duration
	ioTimeout   time.Duration
}

// New returns a client for the socket at path, usually ipc.SocketPath(nil).
func New(path string) *Client {
	return &Client{path: path, dialTimeout: DefaultDialTimeout, ioTimeout: DefaultIOTimeout}
}

// Path returns the socket path the client dials.
func (c *Client) Path() string { return c.path }

// Do sends req and returns the daemon's response. req.V is set to
// ipc.Version if zero (on a copy; req is not modified).
//
// A response that carries an error is returned as that *ipc.Error, so
// errors.Is(err, ipc.ErrNotFound) works. A daemon that is not there is a
// *DialError (see IsNotRunning). ctx's deadline and cancellation apply to
// the dial and to the exchange; without a deadline the exchange is bounded
// by DefaultIOTimeout.
func (c *Client) Do(ctx context.Context, req *ipc.Request) (*ipc.Response, error) {
	if req == nil {
		return nil, errors.New("connectord: nil request")
	}
	return ipc.RetryBusy(ctx, req.Op, func() (*ipc.Response, error) { return c.do(ctx, req) })
}

func (c *Client) do(ctx context.Context, req *ipc.Request) (*ipc.Response, error) {
	msg, err := ipc.EncodeCall(req)
	if err != nil {
		return nil, err
	}
	if err := ipc.CheckSocketPath(c.path); err != nil {
		return nil, err
	}

	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()

	deadline := time.Now().Add(c.ioTimeout)
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if hasCtxDeadline && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("connectord: %w", err)
	}
	// Cancellation interrupts blocked I/O by moving the deadline into the
	// past; no goroutine is started unless ctx is actually cancelled.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	resp, werr, rerr := ipc.Exchange(conn, msg)
	switch {
	case rerr == nil:
	case ctx.Err() != nil:
		return nil, fmt.Errorf("connectord: %s request: %w", req.Op, ctx.Err())
	case hasCtxDeadline && !time.Now().Before(ctxDeadline):
		// The conn deadline we set from ctx fired a moment before ctx's
		// own timer did: report it as the context's deadline all the same.
		return nil, fmt.Errorf("connectord: %s request: %w", req.Op, context.DeadlineExceeded)
	case werr == nil && errors.Is(rerr, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("connectord: no answer to the %s request on %s within %s: %w", req.Op, c.path, c.ioTimeout, rerr)
	}
	return ipc.Result(req.Op, c.path, resp, werr, rerr)
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.dialTimeout}
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("connectord: dial %s: %w", c.path, ctx.Err())
	}
	if ipc.NobodyListening(err) {
		return nil, &DialError{Path: c.path, Err: err}
	}
	// Something is there but would not take the connection: permission
	// denied (another user's socket), a full backlog (a wedged daemon), a
	// dial timeout. Starting another daemon would not help, so this is not
	// a DialError.
	return nil, fmt.Errorf("connectord: cannot connect to %s: %w", c.path, err)
}

// DialError means the daemon did not answer because nothing listens on the
// socket; see ipc.DialError.
type DialError = ipc.DialError

// IsNotRunning reports whether err is a *DialError: the helper starts the
// daemon when it is true.
func IsNotRunning(err error) bool { return ipc.IsNotRunning(err) }
