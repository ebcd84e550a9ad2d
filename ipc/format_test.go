package ipc_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/connectord/connectord/ipc"
)

func TestPrintingNeverShowsSecret(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-very-secret"
	values := map[string]any{
		"request":   ipc.Request{V: 1, Op: ipc.OpStore, ServerURL: "reg.example", Username: "alice", Secret: secret, Args: json.RawMessage(`{"token":"` + secret + `"}`)},
		"*request":  &ipc.Request{V: 1, Op: ipc.OpStore, Username: "alice", Secret: secret},
		"response":  ipc.Response{V: 1, Username: "alice", Secret: secret, Data: json.RawMessage(`"` + secret + `"`)},
		"*response": &ipc.Response{V: 1, Username: "alice", Secret: secret, Error: ipc.Errorf(ipc.CodeInternal, "x")},
		"in a struct": struct {
			R *ipc.Request
			S ipc.Response
		}{&ipc.Request{Secret: secret}, ipc.Response{Secret: secret}},
		"in a slice": []ipc.Request{{Secret: secret}},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v"}
	for name, v := range values {
		for _, verb := range verbs {
			t.Run(name+" "+verb, func(t *testing.T) {
				t.Parallel()
				out := fmt.Sprintf(verb, v)
				if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
					t.Fatalf("%s leaks the secret: %s", verb, out)
				}
			})
		}
	}
}

func TestPrintingShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, verb string
		v          any
		want       string
	}{
		{"request %v", "%v", ipc.Request{V: 1, Op: ipc.OpGet, ServerURL: "r:5000", Secret: "s"}, "{V:1 Op:get ServerURL:r:5000 Secret:[REDACTED]}"},
		{"empty secret stays empty", "%v", ipc.Request{V: 1, Op: ipc.OpGet}, "{V:1 Op:get}"},
		{"request args", "%+v", &ipc.Request{V: 1, Op: ipc.OpStatus, Args: json.RawMessage(`{}`)}, "{V:1 Op:status Args:<2 bytes>}"},
		{"request %#v", "%#v", ipc.Request{V: 1, Op: ipc.OpGet, Secret: "s"}, `ipc.Request{V:1, Op:"get", ServerURL:"", Username:"", Secret:"[REDACTED]", Name:"", Args:json.RawMessage(nil)}`},
		{"response error", "%v", ipc.Response{V: 1, Error: ipc.Errorf(ipc.CodeNotFound, "nope")}, `{V:1 Error:{not_found "nope"}}`},
		{"response %s", "%s", ipc.Response{V: 1, Username: "u", Secret: "s"}, "{V:1 Username:u Secret:[REDACTED]}"},
		{"response list", "%v", ipc.Response{V: 1, Registries: map[string]string{"b": "2", "a": "1"}}, "{V:1 Registries:map[a:1 b:2]}"},
		{"response %#v", "%#v", ipc.Response{V: 1, Secret: "s"}, `ipc.Response{V:1, Error:(*ipc.Error)(nil), Username:"", Secret:"[REDACTED]", Registries:map[string]string(nil), Data:json.RawMessage(nil)}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fmt.Sprintf(tt.verb, tt.v); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
