// Package ipc is the wire protocol between connectord (the daemon) and its
// clients: the docker credential helper and the connectord CLI. It holds the
// message types, their framing, the size and version limits, the error codes
// and the socket path resolution, and nothing else, because both sides link
// it.
//
// # Framing
//
// One connection carries exactly one exchange over a SOCK_STREAM Unix socket:
// the client writes one JSON object terminated by "\n", the daemon answers
// with one JSON object terminated by "\n" and closes:
//
//	→ {"v":1,"op":"get","server_url":"127.0.0.1:5000"}
//	← {"v":1,"username":"labuser","secret":"labpass"}
//	← {"v":1,"error":{"code":"not_found","message":"credentials not found in native keychain"}}
//
// # Why newline-delimited JSON and not HTTP
//
// The credential helper is a process that docker, crane, skopeo and friends
// start for every registry operation, so its whole-process start-up time is
// on the critical path of every pull. Linking net/http (and with it
// crypto/tls, mime, compress, ...) roughly doubles the helper binary and
// adds measurable package-initialisation time, for features (routing,
// keep-alive, chunking, TLS) that a same-host, same-user, one-shot exchange
// does not use. One JSON line each way needs only encoding/json and net, and
// stays debuggable by hand:
//
//	echo '{"v":1,"op":"list"}' | socat - UNIX-CONNECT:$XDG_RUNTIME_DIR/connectord/connectord.sock
//
// For the same reason this package, and ipc/client, import only light
// standard-library packages (no net/http, crypto, log/slog or x/sys); a test
// in ipc/client enforces it.
//
// # Compatibility
//
// Both sides decode strictly: unknown fields are rejected and every message
// carries "v". Adding, removing or re-typing a field is therefore a protocol
// change and needs a new Version; the golden files in testdata freeze the
// current format. The shape {"v":N,"error":{"code":"version",...}} is the one
// thing every version must keep, so that a daemon and a helper of different
// versions can still tell each other so.
package ipc
