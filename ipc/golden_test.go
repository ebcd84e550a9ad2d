package ipc_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/connectord/connectord/ipc"
)

// The golden files freeze the wire format. They are edited by hand, on
// purpose, and there is no -update flag: if one of these tests fails, the
// change breaks every helper and daemon already installed, so either undo
// it or bump ipc.Version and say so in the changelog.
func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		msg  any // *ipc.Request or *ipc.Response
	}{
		{"get_request.json", &ipc.Request{V: 1, Op: ipc.OpGet, ServerURL: "127.0.0.1:5000"}},
		{"get_response.json", &ipc.Response{V: 1, Username: "labuser", Secret: "labpass"}},
		{"not_found_response.json", &ipc.Response{V: 1, Error: &ipc.Error{Code: ipc.CodeNotFound, Message: "credentials not found in native keychain"}}},
		{"list_response.json", &ipc.Response{V: 1, Registries: map[string]string{
			"127.0.0.1:5000":              "labuser",
			"https://index.docker.io/v1/": "alice",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			golden, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			var decoded any
			switch m := tt.msg.(type) {
			case *ipc.Request:
				err = ipc.EncodeRequest(&buf, m)
				if err == nil {
					decoded, err = ipc.DecodeRequest(bufio.NewReader(bytes.NewReader(golden)))
				}
			case *ipc.Response:
				err = ipc.EncodeResponse(&buf, m)
				if err == nil {
					decoded, err = ipc.DecodeResponse(bufio.NewReader(bytes.NewReader(golden)))
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), golden) {
				t.Errorf("encoding changed the wire format:\n got %s\nwant %s", buf.Bytes(), golden)
			}
			if !reflect.DeepEqual(decoded, tt.msg) {
				t.Errorf("decoding the golden file:\n got %#v\nwant %#v", decoded, tt.msg)
			}
		})
	}
}
