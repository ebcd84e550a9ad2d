package ipc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"
)

// MaxSocketPath is the size of sockaddr_un.sun_path on Linux, including
// the terminating NUL: a longer path cannot be dialled at all.
const MaxSocketPath = 108

// CheckSocketPath says, in terms a user can act on, why path cannot be a
// Unix socket address (dialling would only say "invalid argument").
func CheckSocketPath(path string) error {
	if len(path) >= MaxSocketPath {
		return fmt.Errorf("connectord: socket path %s is %d bytes, longer than the %d a Unix socket allows; set CONNECTORD_SOCKET to a shorter path", path, len(path), MaxSocketPath-1)
	}
	return nil
}

// DialError means the daemon did not answer because nothing listens on
// the socket: it is not running, and starting it is the fix. Both client
// transports (ipc/client and ipc/blocking) return it.
type DialError struct {
	Path string // the socket path dialled
	Err  error  // the dial error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("connectord is not running: no answer on %s: %v (start it with `connectord start`, or `systemctl --user start connectord.socket`)", e.Path, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// IsNotRunning reports whether err (or an error it wraps) is a *DialError:
// the socket is missing, or is a file with no listener behind it. The
// helper starts the daemon when it is true.
func IsNotRunning(err error) bool {
	var de *DialError
	return errors.As(err, &de)
}

// NobodyListening reports whether a dial error means no daemon is there:
// no socket file (ENOENT, also for a missing directory), a socket file
// left behind by a daemon that died (ECONNREFUSED), or a path that is not
// a socket at all (ENOTSOCK). Anything else (permission denied, a full
// backlog) means something is there that starting a daemon would not fix.
func NobodyListening(err error) bool {
	return errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ENOTSOCK)
}

// busyRetries bounds the retries of a busy answer: about 1.5 s in all.
const busyRetries = 18

// RetryBusy runs do until it is not refused as busy, with a short,
// bounded backoff. A busy daemon answers at once instead of queueing and
// frees slots within milliseconds (a flooding process is capped per
// peer), so a retry turns a burst into a small delay, not a failed pull.
func RetryBusy(ctx context.Context, op Op, do func() (*Response, error)) (*Response, error) {
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		resp, err := do()
		if attempt == busyRetries || !isBusy(err) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connectord: %s request: %w", op, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func isBusy(err error) bool {
	var ie *Error
	return errors.As(err, &ie) && ie.Code == CodeUnavailable && strings.HasPrefix(ie.Message, "daemon busy")
}

// EncodeCall encodes req (with V set to Version when zero, on a copy) for
// sending. Encoding comes before dialling: a request that cannot be sent
// (too large, invalid Args) fails without touching the daemon.
func EncodeCall(req *Request) ([]byte, error) {
	if req == nil {
		return nil, errors.New("connectord: nil request")
	}
	r := *req
	if r.V == 0 {
		r.V = Version
	}
	var msg bytes.Buffer
	if err := EncodeRequest(&msg, &r); err != nil {
		return nil, fmt.Errorf("connectord: %s request: %w", r.Op, err)
	}
	return msg.Bytes(), nil
}

// Exchange writes msg and reads the answer. It reads even when the write
// failed: the daemon answers some connections (busy, forbidden) without
// reading the request and closes, and its answer is still waiting in the
// receive buffer.
func Exchange(rw io.ReadWriter, msg []byte) (resp *Response, werr, rerr error) {
	_, werr = rw.Write(msg)
	resp, rerr = DecodeResponse(bufio.NewReader(rw))
	return resp, werr, rerr
}

// Result turns an exchange's outcome into the caller's answer, for every
// case but timeouts, which each transport detects its own way and checks
// first. A response carrying an error is returned as that *Error.
func Result(op Op, path string, resp *Response, werr, rerr error) (*Response, error) {
	switch {
	case rerr == nil:
		if resp.Error != nil {
			return nil, resp.Error
		}
		return resp, nil
	case werr != nil:
		return nil, fmt.Errorf("connectord: sending %s request on %s: %w", op, path, werr)
	case errors.Is(rerr, io.EOF):
		return nil, fmt.Errorf("connectord: the daemon on %s closed the connection without answering the %s request", path, op)
	default:
		// An *Error here is about the daemon's response (garbage, another
		// protocol version), wrapped so errors.Is still sees it.
		return nil, fmt.Errorf("connectord: reading the answer to the %s request on %s: %w", op, path, rerr)
	}
}
