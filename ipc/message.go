package ipc

import "encoding/json"

// Version is the protocol version carried in every message's "v" field.
// A peer that sees another version answers or fails with CodeVersion.
const Version = 1

// MaxMessageSize is the largest message, in bytes of JSON excluding the
// terminating newline, that either side encodes or decodes. It bounds the
// memory a misbehaving peer can make the other side allocate; a list of
// every registry a user has logged in to is a few kilobytes.
const MaxMessageSize = 1 << 20

// Op names a request.
type Op string

// Operations. The first four are the docker credential-helper verbs; the
// rest serve the connectord CLI.
const (
	OpGet        Op = "get"
	OpStore      Op = "store"
	OpErase      Op = "erase"
	OpList       Op = "list"
	OpPing       Op = "ping"
	OpConnectors Op = "connectors"
	OpStatus     Op = "status"
	OpShutdown   Op = "shutdown"
	// OpDescribe answers one connector by Name; Args {"show_secrets":true}
	// reveals its secrets (the CLI asks only when the user names it).
	OpDescribe Op = "describe"
	// OpVerify authenticates a connector (Name) against its registry for
	// real; Args {"resource_id":"..."} narrows it.
	OpVerify Op = "verify"
)

// Request is what a client sends. Which fields are meaningful depends on Op.
//
// Secret is a plain string because this is the wire: the daemon wraps it in
// a secret.Value as soon as it is decoded. String, GoString and Format mask
// it, so %v cannot leak it; do not hand a Request to a JSON log handler,
// which would marshal it as the wire format does.
type Request struct {
	V         int    `json:"v"`
	Op        Op     `json:"op"`
	ServerURL string `json:"server_url,omitempty"`
	Username  string `json:"username,omitempty"`
	Secret    string `json:"secret,omitempty"`
	// Name is a connector name, for CLI ops.
	Name string `json:"name,omitempty"`
	// Args holds op-specific extras for CLI ops.
	Args json.RawMessage `json:"args,omitempty"`
}

// Response is what the daemon answers. Either Error is set, or the fields
// the op defines are.
type Response struct {
	V     int    `json:"v"`
	Error *Error `json:"error,omitempty"`
	// Username and Secret answer OpGet.
	Username string `json:"username,omitempty"`
	Secret   string `json:"secret,omitempty"`
	// Registries answers OpList: registry key -> username.
	Registries map[string]string `json:"registries,omitempty"`
	// Data answers CLI ops with op-specific JSON.
	Data json.RawMessage `json:"data,omitempty"`
}
