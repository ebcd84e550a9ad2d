package ipc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// EncodeRequest writes r as one JSON line. Nothing is written if r cannot
// be encoded or is larger than MaxMessageSize.
func EncodeRequest(w io.Writer, r *Request) error {
	if r == nil {
		return Errorf(CodeInvalid, "ipc: nil request")
	}
	return encode(w, r)
}

// EncodeResponse writes r as one JSON line. Nothing is written if r cannot
// be encoded or is larger than MaxMessageSize.
func EncodeResponse(w io.Writer, r *Response) error {
	if r == nil {
		return Errorf(CodeInvalid, "ipc: nil response")
	}
	return encode(w, r)
}

// DecodeRequest reads one request line from r. See decode for the errors.
func DecodeRequest(r *bufio.Reader) (*Request, error) {
	req := new(Request)
	if err := decode(r, req); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeResponse reads one response line from r. See decode for the errors.
func DecodeResponse(r *bufio.Reader) (*Response, error) {
	resp := new(Response)
	if err := decode(r, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func encode(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// HTML escaping (\u003c for '<') protects JSON embedded in HTML; here it
	// would only make socat sessions and golden files harder to read.
	enc.SetEscapeHTML(false)
	// Encode compacts json.RawMessage fields, so a raw value with newlines
	// inside cannot break the line framing.
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("ipc: encode: %w", err)
	}
	if n := buf.Len() - 1; n > MaxMessageSize {
		return Errorf(CodeInvalid, "ipc: message is %d bytes, the limit is %d", n, MaxMessageSize)
	}
	// One Write, so the message is never interleaved or half-sent by us.
	_, err := w.Write(buf.Bytes())
	return err
}

// decode reads one line and decodes it strictly into v (a *Request or a
// *Response). It returns
//
//   - io.EOF, unwrapped, if the stream ends before the first byte (a peer
//     that connected and went away without saying anything);
//   - a read error, wrapped, if reading fails (a deadline, a reset);
//   - an *Error with CodeInvalid if the line is longer than MaxMessageSize,
//     empty, not one JSON object, followed by anything but whitespace on the
//     same line, or has a field this version does not know;
//   - an *Error with CodeVersion if "v" is not Version.
//
// A last line that ends at EOF without "\n" is accepted, so that
// `printf '{"v":1,"op":"ping"}' | socat ...` works.
//
// encoding/json matches keys case-insensitively and keeps the last of
// duplicate keys. Neither can smuggle anything past the checks above, and
// the encoder never produces either, so they are tolerated rather than
// re-implemented away.
func decode(r *bufio.Reader, v interface{ version() int }) error {
	line, err := readLine(r)
	if err != nil {
		return err
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return Errorf(CodeInvalid, "ipc: empty message")
	}
	// Checked up front because json decodes "null" into a struct as a
	// no-op, which would surface as a confusing version error.
	if trimmed[0] != '{' {
		return Errorf(CodeInvalid, "ipc: malformed message: not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// A message from another protocol version is likely to fail strict
		// decoding (it may have fields we do not know); say "version", which
		// tells the user what to do, rather than "unknown field".
		if verr := probeVersion(line); verr != nil {
			return verr
		}
		return Errorf(CodeInvalid, "ipc: malformed message: %v", err)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return Errorf(CodeInvalid, "ipc: malformed message: %d bytes of trailing data after the JSON object", len(rest))
	}
	return checkVersion(v.version())
}

func (r *Request) version() int  { return r.V }
func (r *Response) version() int { return r.V }

func checkVersion(got int) error {
	switch got {
	case Version:
		return nil
	case 0:
		return Errorf(CodeVersion, `ipc: message has no protocol version ("v"); this side speaks version %d`, Version)
	default:
		return Errorf(CodeVersion, "ipc: protocol version mismatch: peer speaks version %d, this side speaks version %d", got, Version)
	}
}

// probeVersion returns the version error for a line that failed strict
// decoding but carries a "v" other than ours, and nil otherwise.
func probeVersion(line []byte) error {
	var probe struct {
		V int `json:"v"`
	}
	if json.Unmarshal(line, &probe) != nil || probe.V == 0 || probe.V == Version {
		return nil
	}
	return checkVersion(probe.V)
}

// readLine returns the next line without its "\n", never holding more than
// MaxMessageSize+1 bytes of it: an oversized message is an error as soon as
// the limit is crossed, not after the peer has finished sending it.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if err == nil {
			frag = frag[:len(frag)-1]
			if len(line)+len(frag) > MaxMessageSize {
				return nil, tooLarge()
			}
			// Copy: frag points into r's buffer, which the next read reuses.
			return append(line, frag...), nil
		}
		if len(line)+len(frag) > MaxMessageSize {
			return nil, tooLarge()
		}
		line = append(line, frag...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return line, nil
		default:
			return nil, fmt.Errorf("ipc: read message: %w", err)
		}
	}
}

func tooLarge() error {
	return Errorf(CodeInvalid, "ipc: message exceeds %d bytes", MaxMessageSize)
}
