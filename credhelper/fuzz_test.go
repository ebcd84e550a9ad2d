package credhelper_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/credhelper"
)

// FuzzHelperStdin feeds arbitrary stdin to every verb of the real helper
// (in-process, so the fuzzer can iterate fast) talking to a real daemon
// over its socket. Whatever a client sends, the helper must not panic,
// `get` must print either credentials JSON or an error, and the daemon
// must keep answering.
func FuzzHelperStdin(f *testing.F) {
	f.Add("get", "127.0.0.1:5055\n")
	f.Add("get", "https://index.docker.io/v1/")
	f.Add("get", "")
	f.Add("get", "ftp://bad host\x00")
	f.Add("store", `{"ServerURL":"reg.example","Username":"u","Secret":"s"}`)
	f.Add("store", `{"ServerURL":"127.0.0.1:5055","Username":"u","Secret":"s"}`)
	f.Add("store", `{"ServerURL":"x","Username":"<token>","Secret":"`+strings.Repeat("a", 300)+`"}`)
	f.Add("store", "{")
	f.Add("erase", "reg.example")
	f.Add("list", "")
	sock := startDaemon(f, cfg)
	h := credhelper.New(func(k string) string {
		switch k {
		case "CONNECTORD_SOCKET":
			return sock
		case "CONNECTORD_NO_AUTOSTART":
			return "1"
		}
		return ""
	})
	f.Fuzz(func(t *testing.T, verb, stdin string) {
		switch verb {
		case "get", "store", "erase", "list":
		default:
			return
		}
		var out bytes.Buffer
		err := credentials.HandleCommand(h, verb, strings.NewReader(stdin), &out)
		if err == nil && verb == "get" {
			var c credentials.Credentials
			if json.Unmarshal(out.Bytes(), &c) != nil || c.Username == "" {
				t.Fatalf("get %q succeeded with unparsable output %q", stdin, out.String())
			}
		}
		if err != nil && strings.Contains(err.Error(), "not running") {
			t.Fatalf("the daemon stopped answering after %s %q: %v", verb, stdin, err)
		}
		// The daemon is still there.
		if _, err := h.List(); err != nil {
			t.Fatalf("list after %s %q: %v", verb, stdin, err)
		}
	})
}
