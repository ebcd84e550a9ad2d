package exec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/secret"
)

// ErrBadOutput is wrapped by every error about a command's output.
var ErrBadOutput = errors.New("unusable output")

// helperOutput is a docker credential helper's answer to get, plus the
// optional expiry this connector reads. Field names match
// case-insensitively, as encoding/json does and docker itself decodes them.
type helperOutput struct {
	ServerURL string  `json:"ServerURL"`
	Username  string  `json:"Username"`
	Secret    string  `json:"Secret"`
	ExpiresAt *string `json:"ExpiresAt"`
}

// ParseHelperOutput reads a docker credential helper's get output:
// exactly one JSON object with a non-empty Secret, a Username (which may
// be empty, or "<token>" for an identity token) and optionally ExpiresAt
// in RFC 3339. Unknown fields are ignored, as docker ignores them. Errors
// wrap ErrBadOutput and never quote the output: it may hold a secret. On
// an error the returned Credentials still carry whatever Secret was read,
// so the caller can redact it elsewhere.
func ParseHelperOutput(b []byte) (connectors.Credentials, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return connectors.Credentials{}, fmt.Errorf("%w: printed nothing on stdout", ErrBadOutput)
	}
	var out helperOutput
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&out); err != nil {
		return connectors.Credentials{}, fmt.Errorf("%w: stdout is not a credential helper's JSON object: %s", ErrBadOutput, describeJSONError(err))
	}
	cred := connectors.Credentials{Username: out.Username, Secret: secret.New(out.Secret), Scope: connectors.ScopeRegistry}
	if _, err := dec.Token(); err != io.EOF {
		return cred, fmt.Errorf("%w: stdout holds more than one JSON value", ErrBadOutput)
	}
	if out.Secret == "" {
		return cred, fmt.Errorf("%w: no \"Secret\" in the JSON on stdout", ErrBadOutput)
	}
	if out.ExpiresAt != nil && *out.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, *out.ExpiresAt)
		if err != nil {
			return cred, fmt.Errorf("%w: \"ExpiresAt\" %.64q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", ErrBadOutput, *out.ExpiresAt)
		}
		cred.ExpiresAt = t
	}
	return cred, nil
}

// describeJSONError explains a decoding error without quoting the input:
// json's syntax errors name the offending character, which may belong to
// a secret.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q holds a JSON %s, not a %s", typ.Field, typ.Value, typ.Type)
		}
		return fmt.Sprintf("a JSON %s, not an object", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return "invalid JSON"
	}
}
