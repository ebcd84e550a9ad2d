package ipc_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/connectord/connectord/ipc"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/. Both targets check that
// decoding never panics, that whatever decodes re-encodes, and that the
// re-encoding decodes to the same message.

func FuzzDecodeRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ipc.DecodeRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := ipc.EncodeRequest(&buf, req); err != nil {
			if errors.Is(err, ipc.ErrInvalid) {
				return // re-encoding grew past MaxMessageSize (U+FFFD for bad bytes)
			}
			t.Fatalf("decoded %#v but cannot re-encode it: %v", req, err)
		}
		again, err := ipc.DecodeRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", buf.Bytes(), err)
		}
		req.Args, again.Args = compact(t, req.Args), compact(t, again.Args)
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request:\n got %#v\nwant %#v", again, req)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ipc.DecodeResponse(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := ipc.EncodeResponse(&buf, resp); err != nil {
			if errors.Is(err, ipc.ErrInvalid) {
				return
			}
			t.Fatalf("decoded %#v but cannot re-encode it: %v", resp, err)
		}
		again, err := ipc.DecodeResponse(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", buf.Bytes(), err)
		}
		resp.Data, again.Data = compact(t, resp.Data), compact(t, again.Data)
		// omitempty drops an empty map: {} and absent mean the same.
		if len(resp.Registries) == 0 {
			resp.Registries = nil
		}
		if !reflect.DeepEqual(resp, again) {
			t.Fatalf("round trip changed the response:\n got %#v\nwant %#v", again, resp)
		}
	})
}

// compact normalises a raw JSON value: the encoder compacts it, so only its
// meaning, not its whitespace, survives a round trip.
func compact(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if raw == nil {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		t.Fatalf("decoded raw value %q is not valid JSON: %v", raw, err)
	}
	return buf.Bytes()
}
