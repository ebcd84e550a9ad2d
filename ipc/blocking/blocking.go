//go:build unix

// Package blocking is the credential helper's transport to the daemon: the
// same one-line exchange as ipc/client, over a Unix socket opened with
// plain system calls and left blocking.
//
// Why not ipc/client: docker starts the helper for every pull, and
// package net costs a measurable share of that start-up (BENCHMARKS.md:
// about 0.2x of a minimal Go program). It links the net package's
// initialisation, registers the socket with the runtime's network poller
// (epoll, an eventfd) and parks the goroutine while the daemon answers,
// where a blocking read just sleeps in the kernel. Time bounds come from
// SO_SNDTIMEO and SO_RCVTIMEO instead of deadlines, so a context's
// deadline is honoured but a cancellation without a deadline cannot
// interrupt a call in flight; the helper never cancels, it only times
// out. The CLI, which does cancel, keeps ipc/client.
package blocking

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/connectord/connectord/ipc"
)

// DefaultTimeout bounds one exchange when the context has no earlier
// deadline.
const DefaultTimeout = 30 * time.Second

// Client talks to the daemon at one socket path.
type Client struct {
	path    string
	timeout time.Duration
}

// New returns a client for the socket at path.
func New(path string) *Client { return &Client{path: path, timeout: DefaultTimeout} }

// Path returns the socket path.
func (c *Client) Path() string { return c.path }

// Do sends req and returns the daemon's response, as ipc/client's Do
// does: a response carrying an error is returned as that *ipc.Error, a
// daemon that is not there as an *ipc.DialError, and a busy answer is
// retried briefly.
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
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("connectord: %s request: %w", req.Op, err)
	}
	timeout := c.timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}

	f, err := c.dial(timeout)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	resp, werr, rerr := ipc.Exchange(f, msg)
	if rerr != nil && isTimeout(rerr) {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return nil, fmt.Errorf("connectord: %s request: %w", req.Op, context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("connectord: no answer to the %s request on %s within %s: %w", req.Op, c.path, timeout, os.ErrDeadlineExceeded)
	}
	return ipc.Result(req.Op, c.path, resp, werr, rerr)
}

// dial connects a blocking socket bounded by timeout in both directions.
func (c *Client) dial(timeout time.Duration) (*os.File, error) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("connectord: socket: %w", err)
	}
	// os.NewFile sees a blocking descriptor and does plain read(2) and
	// write(2): no poller registration.
	f := os.NewFile(uintptr(fd), c.path)
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	for _, opt := range []int{syscall.SO_SNDTIMEO, syscall.SO_RCVTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			f.Close()
			return nil, fmt.Errorf("connectord: setsockopt: %w", err)
		}
	}
	err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: c.path})
	for errors.Is(err, syscall.EINTR) {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: c.path})
	}
	if err == nil {
		return f, nil
	}
	f.Close()
	err = &os.SyscallError{Syscall: "connect", Err: err}
	if ipc.NobodyListening(err) {
		return nil, &ipc.DialError{Path: c.path, Err: err}
	}
	// Something is there but would not take the connection: permission
	// denied (another user's socket) or a full backlog past the timeout
	// (a wedged daemon). Starting another daemon would not help.
	return nil, fmt.Errorf("connectord: cannot connect to %s: %w", c.path, err)
}

// isTimeout: SO_RCVTIMEO expiring makes read(2) fail with EAGAIN.
func isTimeout(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded)
}
