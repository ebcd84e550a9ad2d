// Package server is the daemon side of the connectord socket: it creates
// the socket safely (Listen), identifies every peer with SO_PEERCRED,
// bounds every connection in time and number, frames one request and one
// response per connection, and hands the request to a Handler. It knows
// nothing about credentials or connectors; the daemon does.
//
// Unlike ipc and ipc/client it is linked only into the daemon, a long-lived
// process, so it may use log/slog and golang.org/x/sys/unix.
package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectord/connectord/ipc"
)

// Handler answers one request. It is defined here, where it is used; the
// daemon implements it. ctx carries the caller's Peer (PeerFromContext) and
// is cancelled when the server stops waiting for in-flight requests at
// shutdown. Handle may return a shared *ipc.Response: the server copies it
// before setting V.
type Handler interface {
	Handle(ctx context.Context, req *ipc.Request) *ipc.Response
}

// Defaults for Options.
const (
	DefaultMaxConns        = 256
	DefaultMaxConnsPerPeer = 32
	DefaultReadTimeout     = 5 * time.Second
	DefaultWriteTimeout    = 5 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives structured logs. Nil discards them. Lines carry op,
	// server_url, code and duration, never a username or a secret.
	Logger *slog.Logger
	// MaxConns bounds connections served at once (default 256). A
	// connection beyond it is answered at once with CodeUnavailable
	// "daemon busy" and closed: never queued, so a flood cannot make the
	// helper hang, and memory stays bounded.
	MaxConns int
	// ReadTimeout is the time a client has, from accept, to send its whole
	// request (default 5s). It is one absolute deadline, so a client that
	// dribbles a byte at a time is cut off all the same. WriteTimeout bounds
	// writing the response (default 5s). The handler's own time is bounded
	// by neither: it may legitimately wait on a registry.
	ReadTimeout, WriteTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// once its context is done (default 5s).
	ShutdownTimeout time.Duration
	// MaxConnsPerPeer bounds connections served at once for one process
	// (by SO_PEERCRED pid; default 32), so that one process flooding the
	// socket, or holding connections open, cannot take the slots every
	// other client's get needs. Beyond it a connection is answered busy.
	MaxConnsPerPeer int
	// AllowUID decides which users may connect. The default allows only
	// our own uid: the daemon serves one user's credentials to that user.
	AllowUID func(uid uint32) bool
}

// Server serves a Handler on listeners. It is safe to call Serve on several
// listeners at once; MaxConns counts across them.
type Server struct {
	h                                       Handler
	log                                     *slog.Logger
	readTimeout, writeTimeout, shutdownWait time.Duration
	allowUID                                func(uint32) bool
	slots                                   chan struct{} // one per connection being served
	maxPerPeer                              int
	peersMu                                 sync.Mutex
	peers                                   map[int32]int // pid -> connections being served
}

// New returns a Server for h with opts, defaults filled in.
func New(h Handler, opts Options) *Server {
	if h == nil {
		panic("ipc/server: New with a nil Handler")
	}
	s := &Server{
		h:            h,
		log:          opts.Logger,
		readTimeout:  opts.ReadTimeout,
		writeTimeout: opts.WriteTimeout,
		shutdownWait: opts.ShutdownTimeout,
		allowUID:     opts.AllowUID,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.readTimeout <= 0 {
		s.readTimeout = DefaultReadTimeout
	}
	if s.writeTimeout <= 0 {
		s.writeTimeout = DefaultWriteTimeout
	}
	if s.shutdownWait <= 0 {
		s.shutdownWait = DefaultShutdownTimeout
	}
	if s.allowUID == nil {
		me := uint32(os.Getuid())
		s.allowUID = func(uid uint32) bool { return uid == me }
	}
	maxConns := opts.MaxConns
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	s.slots = make(chan struct{}, maxConns)
	s.maxPerPeer = opts.MaxConnsPerPeer
	if s.maxPerPeer <= 0 {
		s.maxPerPeer = DefaultMaxConnsPerPeer
	}
	s.peers = map[int32]int{}
	return s
}

// Serve accepts connections on ln until ctx is done or ln fails. ln may come
// from Listen or from systemd socket activation (net.FileListener).
//
// On the way out it closes ln first, so new clients fail fast with
// "not running" instead of queueing on a daemon that is leaving (a listener
// from Listen removes its socket file as it closes; an inherited one is
// left to its owner), then waits up to ShutdownTimeout for in-flight
// requests. Requests still running then have their contexts cancelled and
// their connections closed, and Serve returns an error saying how many were
// abandoned. Serve returns nil on a clean shutdown, and the accept error
// if ln failed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return errors.New("ipc/server: Serve with a nil listener")
	}
	addr := ln.Addr().String()
	s.log.Info("ipc: serving", "socket", addr)

	// Handlers must not see ctx's cancellation: shutdown lets them finish.
	// They get their own cancellation once the wait is over.
	base, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	// Closing the listener is the portable way to interrupt Accept.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()

	var (
		wg     sync.WaitGroup
		active conns
		delay  time.Duration // accept back-off
		err    error
	)
	for {
		conn, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			if temporary(aerr) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("ipc: accept failed; retrying", "err", aerr, "delay", delay)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
				}
				break
			}
			err = fmt.Errorf("ipc/server: accept on %s: %w", addr, aerr)
			s.log.Error("ipc: listener failed", "err", aerr)
			break
		}
		delay = 0
		select {
		case s.slots <- struct{}{}:
		default:
			// Off the accept loop: the answer and the drain must not slow
			// down accepting, and each lives at most ~120 ms.
			go s.busy(conn)
			continue
		}
		active.add(conn)
		wg.Go(func() {
			defer func() { <-s.slots }()
			defer active.remove(conn)
			s.serveConn(base, conn)
		})
	}
	_ = ln.Close()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(s.shutdownWait)
	defer timer.Stop()
	select {
	case <-done:
		s.log.Info("ipc: stopped", "socket", addr)
		return err
	case <-timer.C:
		abandon()
		n := active.closeAll()
		s.log.Error("ipc: stopped with requests still running", "socket", addr, "abandoned", n, "waited", s.shutdownWait)
		return errors.Join(err, fmt.Errorf("ipc/server: %d request(s) still running after %s; abandoned", n, s.shutdownWait))
	}
}

// temporary reports whether an accept error is worth retrying: resource
// exhaustion passes (the busy answer frees descriptors quickly), and an
// aborted connection concerns only that connection.
func temporary(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// busyWriteTimeout bounds the busy answer, which is written from the accept
// loop: to a fresh connection with an empty buffer it never blocks, but a
// bound keeps the accept loop's progress independent of any client.
const busyWriteTimeout = 100 * time.Millisecond

func (s *Server) busy(conn net.Conn) {
	defer conn.Close()
	defer drain(conn)
	s.log.Warn("ipc: too many connections; answered busy", "max_conns", cap(s.slots))
	_ = conn.SetWriteDeadline(time.Now().Add(busyWriteTimeout))
	_ = ipc.EncodeResponse(conn, &ipc.Response{
		V:     ipc.Version,
		Error: ipc.Errorf(ipc.CodeUnavailable, "daemon busy: %d connections already being served; retry", cap(s.slots)),
	})
}

// serveConn runs one exchange: identify, read, handle, write, close.
func (s *Server) serveConn(base context.Context, conn net.Conn) {
	defer conn.Close()
	start := time.Now()

	peer, err := peerOf(conn)
	if err != nil {
		s.log.Warn("ipc: cannot identify peer; refused", "err", err)
		s.reply(conn, ipc.Errorf(ipc.CodeForbidden, "connectord cannot identify the connecting process: %v", err))
		return
	}
	if !s.allowUID(peer.UID) {
		s.log.Warn("ipc: refused connection from a disallowed user", "uid", peer.UID, "pid", peer.PID)
		s.reply(conn, ipc.Errorf(ipc.CodeForbidden, "connectord does not serve uid %d", peer.UID))
		return
	}

	if !s.admitPeer(peer.PID) {
		s.log.Warn("ipc: too many connections from one process; answered busy", "pid", peer.PID, "max_per_peer", s.maxPerPeer)
		s.reply(conn, ipc.Errorf(ipc.CodeUnavailable, "daemon busy: process %d already has %d connections open; retry", peer.PID, s.maxPerPeer))
		return
	}
	defer s.releasePeer(peer.PID)

	_ = conn.SetReadDeadline(start.Add(s.readTimeout))
	req, err := ipc.DecodeRequest(bufio.NewReader(conn))
	if err != nil {
		var ie *ipc.Error
		switch {
		case errors.Is(err, io.EOF):
			// Connected and left: Listen's liveness probe, or a client
			// that gave up. Nothing to answer.
			s.log.Debug("ipc: connection closed without a request")
		case errors.As(err, &ie):
			s.log.Info("ipc: bad request", "code", ie.Code, "err", ie.Message, "duration", time.Since(start))
			s.reply(conn, ie)
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Info("ipc: no complete request in time; cut off", "read_timeout", s.readTimeout)
			s.reply(conn, ipc.Errorf(ipc.CodeInvalid, "no complete request within %s", s.readTimeout))
		default:
			s.log.Debug("ipc: reading request failed", "err", err)
		}
		return
	}

	resp := s.call(ContextWithPeer(base, peer), req)
	// Encode before writing, so that a response that cannot be encoded
	// (invalid Data JSON, over MaxMessageSize) is told apart from a client
	// that went away, and still gets an answer.
	var msg bytes.Buffer
	if err := ipc.EncodeResponse(&msg, resp); err != nil {
		s.log.Error("ipc: handler response cannot be encoded", "op", req.Op, "err", err)
		resp = errorResponse(ipc.Errorf(ipc.CodeInternal, "internal error in connectord: the %s response cannot be encoded; see the daemon log", req.Op))
		msg.Reset()
		_ = ipc.EncodeResponse(&msg, resp)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := conn.Write(msg.Bytes()); err != nil {
		s.log.Info("ipc: writing response failed", "op", req.Op, "err", err, "duration", time.Since(start))
		return
	}
	s.logRequest(req, resp, time.Since(start))
}

// admitPeer counts a connection against its process's share.
func (s *Server) admitPeer(pid int32) bool {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.peers[pid] >= s.maxPerPeer {
		return false
	}
	s.peers[pid]++
	return true
}

func (s *Server) releasePeer(pid int32) {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	if s.peers[pid]--; s.peers[pid] <= 0 {
		delete(s.peers, pid)
	}
}

// call runs the handler, turning a panic or a nil response into an
// internal error, and returns a copy with V set.
func (s *Server) call(ctx context.Context, req *ipc.Request) (resp *ipc.Response) {
	defer func() {
		if v := recover(); v != nil {
			// The panic value or the stack may quote the request's secret
			// (a Request itself prints masked, but a bare string may not).
			s.log.Error("ipc: handler panicked",
				"op", req.Op, "server_url", logURL(req.ServerURL),
				"panic", redact(fmt.Sprint(v), req.Secret),
				"stack", redact(string(debug.Stack()), req.Secret))
			resp = errorResponse(ipc.Errorf(ipc.CodeInternal, "internal error in connectord while handling %s; see the daemon log", req.Op))
		}
	}()
	r := s.h.Handle(ctx, req)
	if r == nil {
		s.log.Error("ipc: handler returned no response", "op", req.Op)
		return errorResponse(ipc.Errorf(ipc.CodeInternal, "internal error in connectord: no response to %s", req.Op))
	}
	out := *r
	out.V = ipc.Version
	return &out
}

// reply writes an early error answer, best effort.
func (s *Server) reply(conn net.Conn, e *ipc.Error) {
	_ = conn.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if err := ipc.EncodeResponse(conn, errorResponse(e)); err != nil {
		s.log.Debug("ipc: writing response failed", "err", err)
	}
	drain(conn)
}

// drain discards what the client already sent before the connection is
// closed. An AF_UNIX socket closed with unread data makes the peer's next
// read fail with ECONNRESET, before it has read the answer waiting for
// it: a busy, forbidden or cut-off client would see "connection reset"
// instead of the reason. Bounded in bytes and time: a client that keeps
// sending gets no more of our attention.
func drain(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _ = io.Copy(io.Discard, io.LimitReader(conn, ipc.MaxMessageSize+1))
}

func errorResponse(e *ipc.Error) *ipc.Response { return &ipc.Response{V: ipc.Version, Error: e} }

// logRequest logs one served request. Routine outcomes (success, and
// not_found, which docker asks for all the time) are Debug; refusals of the
// request are Info; internal errors are Error.
func (s *Server) logRequest(req *ipc.Request, resp *ipc.Response, d time.Duration) {
	level, code := slog.LevelDebug, "ok"
	if resp.Error != nil {
		code = string(resp.Error.Code)
		switch resp.Error.Code {
		case ipc.CodeNotFound:
		case ipc.CodeInternal:
			level = slog.LevelError
		default:
			level = slog.LevelInfo
		}
	}
	s.log.LogAttrs(context.Background(), level, "ipc: request",
		slog.String("op", string(req.Op)),
		slog.String("server_url", logURL(req.ServerURL)),
		slog.String("code", code),
		slog.Duration("duration", d))
}

const maxLoggedURL = 256

// logURL makes a request's server_url safe to log: any user:password@ part
// is masked, and the length is capped so a client cannot fill the log.
func logURL(s string) string {
	scheme, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		rest = "[REDACTED]@" + rest[i+1:]
	}
	s = scheme + rest
	if len(s) > maxLoggedURL {
		s = strings.ToValidUTF8(s[:maxLoggedURL], "") + "…"
	}
	return s
}

func redact(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}

// conns tracks the connections being served, to close them if shutdown
// gives up on them.
type conns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (c *conns) add(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[net.Conn]struct{})
	}
	c.m[conn] = struct{}{}
}

func (c *conns) remove(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, conn)
}

func (c *conns) closeAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.m {
		_ = conn.Close()
	}
	return len(c.m)
}
