package ipc_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/connectord/connectord/ipc"
)

func reader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  ipc.Request
	}{
		{"get", ipc.Request{V: ipc.Version, Op: ipc.OpGet, ServerURL: "127.0.0.1:5000"}},
		{"store", ipc.Request{V: ipc.Version, Op: ipc.OpStore, ServerURL: "https://index.docker.io/v1/", Username: "u", Secret: "p\n\"<&>\u2028"}},
		{"erase", ipc.Request{V: ipc.Version, Op: ipc.OpErase, ServerURL: "ghcr.io"}},
		{"list", ipc.Request{V: ipc.Version, Op: ipc.OpList}},
		{"cli args", ipc.Request{V: ipc.Version, Op: ipc.OpConnectors, Name: "lab", Args: json.RawMessage(`{"verbose":true,"n":[1,2]}`)}},
		{"unicode", ipc.Request{V: ipc.Version, Op: ipc.OpGet, ServerURL: "rëgistry.例え.jp:443/team"}},
		{"unknown op is the handler's business", ipc.Request{V: ipc.Version, Op: "frobnicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := ipc.EncodeRequest(&buf, &tt.req); err != nil {
				t.Fatalf("encode: %v", err)
			}
			wire := buf.String()
			if strings.Count(wire, "\n") != 1 || !strings.HasSuffix(wire, "\n") {
				t.Fatalf("encoded %q: want exactly one line ending in \\n", wire)
			}
			got, err := ipc.DecodeRequest(reader(wire))
			if err != nil {
				t.Fatalf("decode %q: %v", wire, err)
			}
			if !reflect.DeepEqual(*got, tt.req) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", *got, tt.req)
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		resp ipc.Response
	}{
		{"credentials", ipc.Response{V: ipc.Version, Username: "labuser", Secret: "labpass"}},
		{"error", ipc.Response{V: ipc.Version, Error: ipc.Errorf(ipc.CodeNotFound, "credentials not found in native keychain")}},
		{"list", ipc.Response{V: ipc.Version, Registries: map[string]string{"127.0.0.1:5000": "labuser", "https://index.docker.io/v1/": "me"}}},
		{"data", ipc.Response{V: ipc.Version, Data: json.RawMessage(`[{"name":"lab"}]`)}},
		{"empty ok", ipc.Response{V: ipc.Version}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := ipc.EncodeResponse(&buf, &tt.resp); err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := ipc.DecodeResponse(bufio.NewReader(&buf))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.resp) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", *got, tt.resp)
			}
		})
	}
}

// A raw JSON value with newlines inside must not break the line framing.
func TestEncodeCompactsRawMessage(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	req := &ipc.Request{V: 1, Op: ipc.OpStatus, Args: json.RawMessage("{\n  \"a\": 1\n}")}
	if err := ipc.EncodeRequest(&buf, req); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), `{"v":1,"op":"status","args":{"a":1}}`+"\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Several messages on one reader decode one after the other: a decoded
// message must not alias the reader's buffer.
func TestDecodeConsecutive(t *testing.T) {
	t.Parallel()
	r := reader("{\"v\":1,\"op\":\"get\",\"server_url\":\"a\"}\n{\"v\":1,\"op\":\"get\",\"server_url\":\"b\"}\n")
	first, err := ipc.DecodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ipc.DecodeRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	if first.ServerURL != "a" || second.ServerURL != "b" {
		t.Fatalf("got %q then %q", first.ServerURL, second.ServerURL)
	}
	if _, err := ipc.DecodeRequest(r); err != io.EOF {
		t.Fatalf("third decode: got %v, want io.EOF", err)
	}
}

// padded returns a valid request line whose JSON is exactly n bytes.
func padded(n int) string {
	const head, tail = `{"v":1,"op":"get","server_url":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		code     ipc.Code // "" means: not an *ipc.Error
		wantErr  error    // checked with errors.Is when set
		contains []string
	}{
		{name: "empty stream", in: "", wantErr: io.EOF},
		{name: "empty line", in: "\n", code: ipc.CodeInvalid, contains: []string{"empty"}},
		{name: "blank line", in: " \t\r\n", code: ipc.CodeInvalid, contains: []string{"empty"}},
		{name: "oversized", in: padded(ipc.MaxMessageSize+1) + "\n", code: ipc.CodeInvalid, contains: []string{"exceeds", "1048576"}},
		{name: "oversized without newline", in: padded(ipc.MaxMessageSize + 1), code: ipc.CodeInvalid, contains: []string{"exceeds"}},
		{name: "oversized, garbage", in: strings.Repeat("a", 3*ipc.MaxMessageSize), code: ipc.CodeInvalid, contains: []string{"exceeds"}},
		{name: "trailing garbage", in: `{"v":1,"op":"get"} x` + "\n", code: ipc.CodeInvalid, contains: []string{"trailing"}},
		{name: "second object on the line", in: `{"v":1,"op":"get"}{"v":1,"op":"get"}` + "\n", code: ipc.CodeInvalid, contains: []string{"trailing"}},
		{name: "unknown field", in: `{"v":1,"op":"get","password":"x"}` + "\n", code: ipc.CodeInvalid, contains: []string{"unknown field", "password"}},
		{name: "wrong version", in: `{"v":2,"op":"get"}` + "\n", code: ipc.CodeVersion, contains: []string{"version 2", "version 1"}},
		{name: "wrong version with new fields", in: `{"v":7,"op":"get","shiny":true}` + "\n", code: ipc.CodeVersion, contains: []string{"version 7", "version 1"}},
		{name: "missing version", in: `{"op":"get"}` + "\n", code: ipc.CodeVersion, contains: []string{`"v"`, "version 1"}},
		{name: "version of the wrong type", in: `{"v":"1","op":"get"}` + "\n", code: ipc.CodeInvalid},
		{name: "truncated", in: `{"v":1,"op":` + "\n", code: ipc.CodeInvalid, contains: []string{"malformed"}},
		{name: "truncated at EOF", in: `{"v":1,"op":"g`, code: ipc.CodeInvalid},
		{name: "null", in: "null\n", code: ipc.CodeInvalid, contains: []string{"not a JSON object"}},
		{name: "array", in: "[]\n", code: ipc.CodeInvalid},
		{name: "string", in: `"get"` + "\n", code: ipc.CodeInvalid},
		{name: "wrong field type", in: `{"v":1,"op":"get","args":1,"server_url":2}` + "\n", code: ipc.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := ipc.DecodeRequest(reader(tt.in))
			if err == nil {
				t.Fatalf("decoded %v, want an error", req)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			var ie *ipc.Error
			if isIPC := errors.As(err, &ie); isIPC != (tt.code != "") || (isIPC && ie.Code != tt.code) {
				t.Fatalf("got %T %v, want code %q", err, err, tt.code)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		code ipc.Code
	}{
		{"unknown field in error", `{"v":1,"error":{"code":"x","message":"y","retry":1}}`, ipc.CodeInvalid},
		{"unknown top-level field", `{"v":1,"token":"t"}`, ipc.CodeInvalid},
		{"wrong version", `{"v":3,"error":{"code":"version","message":"m"}}`, ipc.CodeVersion},
		{"registries of the wrong type", `{"v":1,"registries":["a"]}`, ipc.CodeInvalid},
		{"trailing data", `{"v":1} {}`, ipc.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ipc.DecodeResponse(reader(tt.in + "\n"))
			var ie *ipc.Error
			if !errors.As(err, &ie) || ie.Code != tt.code {
				t.Fatalf("got %v, want code %q", err, tt.code)
			}
		})
	}
}

func TestDecodeSizeBoundary(t *testing.T) {
	t.Parallel()
	for _, eol := range []string{"\n", ""} {
		req, err := ipc.DecodeRequest(reader(padded(ipc.MaxMessageSize) + eol))
		if err != nil {
			t.Fatalf("message of exactly MaxMessageSize (eol %q): %v", eol, err)
		}
		if req.Op != ipc.OpGet {
			t.Fatalf("got %v", req)
		}
	}
}

// A last line without "\n" at EOF is accepted (printf | socat).
func TestDecodeUnterminatedLine(t *testing.T) {
	t.Parallel()
	req, err := ipc.DecodeRequest(reader(` {"v":1,"op":"ping"} `))
	if err != nil || req.Op != ipc.OpPing {
		t.Fatalf("got %v, %v", req, err)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	_, err := ipc.DecodeRequest(bufio.NewReader(failingReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap %v", err, boom)
	}
	var ie *ipc.Error
	if errors.As(err, &ie) {
		t.Fatalf("a transport failure must not look like a protocol error: %v", err)
	}
}

type countingWriter struct{ writes, n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; w.n += len(p); return len(p), nil }

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		enc  func(w io.Writer) error
		code ipc.Code // "" means: not an *ipc.Error
	}{
		{"nil request", func(w io.Writer) error { return ipc.EncodeRequest(w, nil) }, ipc.CodeInvalid},
		{"nil response", func(w io.Writer) error { return ipc.EncodeResponse(w, nil) }, ipc.CodeInvalid},
		{"oversized request", func(w io.Writer) error {
			return ipc.EncodeRequest(w, &ipc.Request{V: 1, Op: ipc.OpStore, Secret: strings.Repeat("s", ipc.MaxMessageSize)})
		}, ipc.CodeInvalid},
		{"oversized response", func(w io.Writer) error {
			regs := make(map[string]string)
			for i := range 20000 {
				regs[strings.Repeat("r", 40)+string(rune('a'+i%26))+strings.Repeat("x", i%7)+string(rune(0x4e00+i))] = strings.Repeat("u", 20)
			}
			return ipc.EncodeResponse(w, &ipc.Response{V: 1, Registries: regs})
		}, ipc.CodeInvalid},
		{"invalid raw JSON", func(w io.Writer) error {
			return ipc.EncodeRequest(w, &ipc.Request{V: 1, Op: ipc.OpStatus, Args: json.RawMessage("{")})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var w countingWriter
			err := tt.enc(&w)
			if err == nil {
				t.Fatal("want an error")
			}
			var ie *ipc.Error
			if isIPC := errors.As(err, &ie); isIPC != (tt.code != "") || (isIPC && ie.Code != tt.code) {
				t.Fatalf("got %T %v, want code %q", err, err, tt.code)
			}
			if w.writes != 0 {
				t.Fatalf("%d bytes written for a message that failed to encode", w.n)
			}
		})
	}
}

func TestEncodeSingleWrite(t *testing.T) {
	t.Parallel()
	var w countingWriter
	if err := ipc.EncodeResponse(&w, &ipc.Response{V: 1, Username: "u", Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	if w.writes != 1 {
		t.Fatalf("%d writes, want 1", w.writes)
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	sentinels := map[ipc.Code]*ipc.Error{
		ipc.CodeNotFound: ipc.ErrNotFound, ipc.CodeInvalid: ipc.ErrInvalid, ipc.CodeConflict: ipc.ErrConflict,
		ipc.CodeUnavailable: ipc.ErrUnavailable, ipc.CodeInternal: ipc.ErrInternal, ipc.CodeVersion: ipc.ErrVersion,
		ipc.CodeForbidden: ipc.ErrForbidden,
	}
	for code, sentinel := range sentinels {
		t.Run(string(code), func(t *testing.T) {
			t.Parallel()
			err := error(ipc.Errorf(code, "something about %s", "x"))
			wrapped := errors.Join(errors.New("context"), err)
			if !errors.Is(err, sentinel) || !errors.Is(wrapped, sentinel) {
				t.Fatalf("%v does not match its sentinel", err)
			}
			for other, s := range sentinels {
				if other != code && errors.Is(err, s) {
					t.Errorf("%s matches the %s sentinel", code, other)
				}
			}
			if err.Error() != "something about x" {
				t.Errorf("Error() = %q, want the message", err.Error())
			}
			if sentinel.Error() != string(code) {
				t.Errorf("sentinel prints %q, want %q", sentinel.Error(), code)
			}
		})
	}
	if got := (&ipc.Error{}).Error(); got == "" {
		t.Error("an empty *Error prints as the empty string")
	}
	if errors.Is(errors.New("not_found"), ipc.ErrNotFound) {
		t.Error("a plain error matched a sentinel")
	}
}
