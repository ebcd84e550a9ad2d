package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/ipc/server"
)

// rawExchange writes data on a fresh connection, shuts down its write side
// and returns everything the server sends before closing.
func rawExchange(t *testing.T, path, data string) string {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// A write error is not fatal: the server may answer (say, "message too
	// large") and close before taking all of data, and its answer is
	// still there to read.
	if _, err := io.WriteString(conn, data); err != nil {
		t.Logf("write: %v", err)
	}
	_ = conn.(*net.UnixConn).CloseWrite()
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	type seen struct {
		req  *ipc.Request
		peer server.Peer
		ok   bool
	}
	got := make(chan seen, 1)
	shared := &ipc.Response{Username: "labuser", Secret: "labpass"}
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		peer, ok := server.PeerFromContext(ctx)
		got <- seen{req, peer, ok}
		switch req.Op {
		case ipc.OpGet:
			return shared // a shared response: the server must not modify it
		case ipc.OpList:
			return &ipc.Response{Registries: map[string]string{"127.0.0.1:5000": "labuser"}}
		case ipc.OpStatus:
			return &ipc.Response{V: 99, Data: json.RawMessage(`{"connectors":2}`)}
		default:
			return &ipc.Response{}
		}
	}), server.Options{})

	tests := []struct {
		name string
		req  ipc.Request
		want ipc.Response
	}{
		{"get", ipc.Request{Op: ipc.OpGet, ServerURL: "127.0.0.1:5000"}, ipc.Response{V: 1, Username: "labuser", Secret: "labpass"}},
		{"list", ipc.Request{Op: ipc.OpList}, ipc.Response{V: 1, Registries: map[string]string{"127.0.0.1:5000": "labuser"}}},
		{"status, handler's V overridden", ipc.Request{Op: ipc.OpStatus, Name: "lab", Args: json.RawMessage(`{"x":1}`)}, ipc.Response{V: 1, Data: json.RawMessage(`{"connectors":2}`)}},
		{"store", ipc.Request{V: 1, Op: ipc.OpStore, ServerURL: "r", Username: "u", Secret: "s"}, ipc.Response{V: 1}},
	}
	// Sequential: one handler channel.
	for _, tt := range tests {
		resp, err := r.client.Do(t.Context(), &tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if fmt.Sprintf("%#v", *resp) != fmt.Sprintf("%#v", tt.want) || resp.Secret != tt.want.Secret {
			t.Errorf("%s: got %#v, want %#v", tt.name, *resp, tt.want)
		}
		s := <-got
		if s.req.Op != tt.req.Op || s.req.ServerURL != tt.req.ServerURL || s.req.Secret != tt.req.Secret || s.req.V != ipc.Version {
			t.Errorf("%s: handler got %v", tt.name, s.req)
		}
		want := server.Peer{PID: int32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
		if !s.ok || s.peer != want {
			t.Errorf("%s: peer %+v (ok %v), want %+v", tt.name, s.peer, s.ok, want)
		}
	}
	if shared.V != 0 {
		t.Error("the server modified the handler's response")
	}
}

func TestErrorResponses(t *testing.T) {
	t.Parallel()
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		switch req.ServerURL {
		case "missing":
			return &ipc.Response{Error: ipc.Errorf(ipc.CodeNotFound, "credentials not found in native keychain")}
		case "nil":
			return nil
		case "bad data":
			return &ipc.Response{Data: json.RawMessage(`{not json`)}
		case "huge":
			return &ipc.Response{Secret: strings.Repeat("s", ipc.MaxMessageSize)}
		case "panic":
			panic("boom while handling secret " + req.Secret)
		case "panic error":
			panic(fmt.Errorf("wrapped: %v / %s", req, req.Secret))
		}
		return &ipc.Response{}
	}), server.Options{})

	tests := []struct {
		url      string
		sentinel error
		message  string
	}{
		{"missing", ipc.ErrNotFound, "credentials not found in native keychain"},
		{"nil", ipc.ErrInternal, "no response to get"},
		{"bad data", ipc.ErrInternal, "cannot be encoded"},
		{"huge", ipc.ErrInternal, "cannot be encoded"},
		{"panic", ipc.ErrInternal, "while handling get"},
		{"panic error", ipc.ErrInternal, "while handling get"},
	}
	const secret = "sup3r-s3cret-value"
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			resp, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: tt.url, Secret: secret})
			if !errors.Is(err, tt.sentinel) || resp != nil {
				t.Fatalf("got %v, %v; want %v", resp, err, tt.sentinel)
			}
			var ie *ipc.Error
			if !errors.As(err, &ie) || !strings.Contains(ie.Message, tt.message) {
				t.Fatalf("got %#v, want message containing %q", err, tt.message)
			}
		})
	}
	t.Cleanup(func() {
		logs := r.logs.String()
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows the secret:\n%s", logs)
		}
		if !strings.Contains(logs, "handler panicked") || !strings.Contains(logs, "boom while handling secret [REDACTED]") {
			t.Errorf("panic not logged (redacted):\n%s", logs)
		}
	})
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var asked atomic.Uint32
	r := start(t, HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response {
		calls.Add(1)
		return &ipc.Response{}
	}), server.Options{AllowUID: func(uid uint32) bool { asked.Store(uid); return false }})

	_, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: "r"})
	if !errors.Is(err, ipc.ErrForbidden) || !strings.Contains(err.Error(), "uid "+strconv.Itoa(os.Getuid())) {
		t.Fatalf("got %v, want ErrForbidden naming our uid", err)
	}
	if calls.Load() != 0 {
		t.Fatal("Handle was called for a forbidden peer")
	}
	if asked.Load() != uint32(os.Getuid()) {
		t.Errorf("AllowUID asked about uid %d", asked.Load())
	}
	logs := r.logs.String()
	wantLog := fmt.Sprintf("uid=%d pid=%d", os.Getuid(), os.Getpid())
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, wantLog) {
		t.Errorf("refusal not logged at warn with %q:\n%s", wantLog, logs)
	}
}

func TestBusy(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		if req.Op == ipc.OpGet {
			close(entered)
			<-release
		}
		return &ipc.Response{Username: "u"}
	}), server.Options{MaxConns: 1})

	first := make(chan error, 1)
	go func() {
		_, err := r.client.Do(context.Background(), &ipc.Request{Op: ipc.OpGet})
		first <- err
	}()
	<-entered

	begin := time.Now()
	_, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
	if !errors.Is(err, ipc.ErrUnavailable) || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("got %v, want ErrUnavailable \"daemon busy\"", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("the busy answer took %s: queued?", d)
	}

	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
	// The slot is freed once the server has closed the first connection,
	// which may be just after the client read its answer.
	for i := 0; ; i++ {
		_, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
		if err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("the slot was never freed after the busy spell: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client that connects and sends nothing (or dribbles) must not hold up
// anyone else, and is cut off at ReadTimeout.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		slow  func(conn net.Conn, stop <-chan struct{})
		wantR string // the cut-off answer
	}{
		{"silent", func(net.Conn, <-chan struct{}) {}, "no complete request within 300ms"},
		{"dribbling", func(conn net.Conn, stop <-chan struct{}) {
			msg := `{"v":1,"op":"get","server_url":"` + strings.Repeat("x", 1000)
			for i := range len(msg) {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{msg[i]}); err != nil {
					return
				}
			}
		}, "no complete request within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			r := start(t, HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response {
				calls.Add(1)
				return &ipc.Response{Username: "u"}
			}), server.Options{ReadTimeout: readTimeout})

			slow, err := net.Dial("unix", r.path)
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			opened := time.Now()
			stop := make(chan struct{})
			defer close(stop)
			go tt.slow(slow, stop)

			// Another client is served at once, not after the slow one.
			begin := time.Now()
			resp, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpGet})
			if err != nil || resp.Username != "u" {
				t.Fatalf("the other client: %v, %v", resp, err)
			}
			if d := time.Since(begin); d >= readTimeout {
				t.Errorf("the other client waited %s, at least the slow one's read timeout", d)
			}

			_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(slow)
			elapsed := time.Since(opened)
			if err != nil {
				t.Fatalf("reading the cut-off answer: %v", err)
			}
			if !strings.Contains(string(answer), tt.wantR) || !strings.Contains(string(answer), `"code":"invalid"`) {
				t.Errorf("cut-off answer %q", answer)
			}
			if elapsed < readTimeout-50*time.Millisecond || elapsed > readTimeout+3*time.Second {
				t.Errorf("cut off after %s, want about %s", elapsed, readTimeout)
			}
			if calls.Load() != 1 {
				t.Errorf("Handle called %d times, want 1", calls.Load())
			}
		})
	}
}

// Malformed requests are answered with the decoder's *ipc.Error and never
// reach the handler.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	r := start(t, HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response {
		calls.Add(1)
		return &ipc.Response{}
	}), server.Options{})
	tests := []struct {
		name, send string
		code       ipc.Code
		contains   string
	}{
		{"newer client", `{"v":2,"op":"get","new":1}` + "\n", ipc.CodeVersion, "peer speaks version 2, this side speaks version 1"},
		{"no version", `{"op":"get"}` + "\n", ipc.CodeVersion, `no protocol version`},
		{"unknown field", `{"v":1,"op":"get","password":"x"}` + "\n", ipc.CodeInvalid, "unknown field"},
		{"trailing data", `{"v":1,"op":"get"} x` + "\n", ipc.CodeInvalid, "trailing"},
		{"not JSON", "GET / HTTP/1.1\r\n\r\n", ipc.CodeInvalid, "malformed"},
		{"empty line", "\n", ipc.CodeInvalid, "empty"},
		{"oversized", `{"v":1,"op":"get","server_url":"` + strings.Repeat("x", ipc.MaxMessageSize) + "\"}\n", ipc.CodeInvalid, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			answer := rawExchange(t, r.path, tt.send)
			resp, err := ipc.DecodeResponse(bufio.NewReader(strings.NewReader(answer)))
			if err != nil {
				t.Fatalf("answer %q: %v", answer, err)
			}
			if resp.Error == nil || resp.Error.Code != tt.code || !strings.Contains(resp.Error.Message, tt.contains) {
				t.Fatalf("got %v, want %s containing %q", resp, tt.code, tt.contains)
			}
		})
	}
	t.Cleanup(func() {
		if n := calls.Load(); n != 0 {
			t.Errorf("Handle called %d times for malformed requests", n)
		}
	})
}

// A connection closed without a request (Listen's liveness probe does it)
// gets no answer and does not disturb the server.
func TestConnectAndLeave(t *testing.T) {
	t.Parallel()
	r := start(t, HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response { return &ipc.Response{} }), server.Options{})
	for range 5 {
		if out := rawExchange(t, r.path, ""); out != "" {
			t.Fatalf("answered %q to an empty connection", out)
		}
	}
	if _, err := server.Listen(r.path); !errors.Is(err, server.ErrAlreadyListening) {
		t.Fatalf("second Listen: %v", err)
	}
	if _, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpPing}); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var handlerCtxErr atomic.Value
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		close(entered)
		<-release
		handlerCtxErr.Store(fmt.Sprint(ctx.Err()))
		return &ipc.Response{Username: "finished"}
	}), server.Options{})

	inflight := make(chan error, 1)
	go func() {
		resp, err := r.client.Do(context.Background(), &ipc.Request{Op: ipc.OpGet})
		if err == nil && resp.Username != "finished" {
			err = fmt.Errorf("got %v", resp)
		}
		inflight <- err
	}()
	<-entered
	r.stop()

	// The socket goes at once, so new clients see "not running" instead of
	// queueing on a daemon that is leaving.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(r.path); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket file still there after shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpPing})
	if !client.IsNotRunning(err) || !strings.Contains(err.Error(), r.path) {
		t.Fatalf("new client during shutdown: %v, want IsNotRunning naming the path", err)
	}

	// The in-flight request still completes, with a live context.
	close(release)
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if got := handlerCtxErr.Load(); got != "<nil>" {
		t.Errorf("in-flight handler's ctx: %v, want not cancelled", got)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("Serve: %v, want nil on a clean shutdown", err)
	}
	// The lock went with the listener: a new daemon can start.
	ln, err := server.Listen(r.path)
	if err != nil {
		t.Fatalf("Listen after shutdown: %v", err)
	}
	ln.Close()
}

// A handler that outlives ShutdownTimeout has its context cancelled and its
// connection closed, and Serve says so.
func TestShutdownAbandonsStuckHandlers(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		close(entered)
		<-ctx.Done()
		close(cancelled)
		time.Sleep(time.Second) // and ignore it for a while
		return &ipc.Response{}
	}), server.Options{ShutdownTimeout: 200 * time.Millisecond})

	clientErr := make(chan error, 1)
	go func() {
		_, err := r.client.Do(context.Background(), &ipc.Request{Op: ipc.OpGet})
		clientErr <- err
	}()
	<-entered
	begin := time.Now()
	err := r.wait(t)
	if err == nil || !strings.Contains(err.Error(), "1 request(s) still running") {
		t.Fatalf("Serve: %v, want an abandoned-requests error", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Serve took %s to give up with a 200ms ShutdownTimeout", d)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck handler's context was never cancelled")
	}
	select {
	case err := <-clientErr:
		if err == nil {
			t.Error("the abandoned client got a response")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned client's connection was not closed")
	}
}

// A listener inherited from systemd is not ours to remove.
func TestInheritedListener(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	orig, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := orig.File()
	if err != nil {
		t.Fatal(err)
	}
	orig.SetUnlinkOnClose(false)
	orig.Close()
	ln, err := net.FileListener(f) // as a socket-activated daemon does with fd 3
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ln.(*net.UnixListener); !ok {
		t.Fatalf("FileListener gave %T", ln)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	srv := server.New(HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response {
		return &ipc.Response{Username: "activated"}
	}), server.Options{})
	go func() { done <- srv.Serve(ctx, ln) }()

	resp, err := client.New(path).Do(t.Context(), &ipc.Request{Op: ipc.OpGet})
	if err != nil || resp.Username != "activated" {
		t.Fatalf("got %v, %v", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the inherited socket file was removed: %v", err)
	}
}

type failingListener struct {
	net.Listener
	err error
}

func (l failingListener) Accept() (net.Conn, error) { return nil, l.err }

func TestListenerFailure(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shortDir(t), "cd.sock")
	real, err := server.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("listener exploded")
	srv := server.New(HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response { return nil }), server.Options{})
	err = srv.Serve(t.Context(), failingListener{real, boom})
	if !errors.Is(err, boom) {
		t.Fatalf("Serve: %v, want the accept error", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("listener not closed after failure: %v", err)
	}
}

// Log lines carry op, server_url, code and duration; never the secret or
// the username, and never credentials embedded in a URL.
func TestLogs(t *testing.T) {
	t.Parallel()
	r := start(t, HandlerFunc(func(ctx context.Context, req *ipc.Request) *ipc.Response {
		if req.Op == ipc.OpGet {
			return &ipc.Response{Username: "resp-user-name", Secret: "resp-secret-value"}
		}
		return &ipc.Response{Error: ipc.Errorf(ipc.CodeConflict, "exists")}
	}), server.Options{})
	if _, err := r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpGet, ServerURL: "registry.example:5000"}); err != nil {
		t.Fatal(err)
	}
	_, _ = r.client.Do(t.Context(), &ipc.Request{Op: ipc.OpStore, ServerURL: "https://bob:urlpass@reg.example/v2/", Username: "req-user-name", Secret: "req-secret-value"})
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	logs := r.logs.String()
	for _, leak := range []string{"resp-user-name", "resp-secret-value", "req-user-name", "req-secret-value", "urlpass", "bob"} {
		if strings.Contains(logs, leak) {
			t.Errorf("log contains %q:\n%s", leak, logs)
		}
	}
	for _, want := range []string{
		`level=DEBUG msg="ipc: request" op=get server_url=registry.example:5000 code=ok duration=`,
		`level=INFO msg="ipc: request" op=store server_url=https://[REDACTED]@reg.example/v2/ code=conflict duration=`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestServeNilListener(t *testing.T) {
	t.Parallel()
	srv := server.New(HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response { return nil }), server.Options{})
	if err := srv.Serve(t.Context(), nil); err == nil {
		t.Fatal("Serve(nil) succeeded")
	}
}

func TestPeerContext(t *testing.T) {
	t.Parallel()
	if _, ok := server.PeerFromContext(context.Background()); ok {
		t.Fatal("peer in an empty context")
	}
	want := server.Peer{PID: 42, UID: 1000, GID: 100}
	if got, ok := server.PeerFromContext(server.ContextWithPeer(context.Background(), want)); !ok || got != want {
		t.Fatalf("got %+v, %v", got, ok)
	}
}
