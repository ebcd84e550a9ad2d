package server

import "context"

// Peer identifies the process at the other end of a connection, as the
// kernel reported it when the connection was made (SO_PEERCRED on Linux).
// PID is for logs only: it may be reused after the process exits.
type Peer struct {
	PID      int32
	UID, GID uint32
}

type peerKey struct{}

// PeerFromContext returns the Peer of the connection a Handle call serves.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// ContextWithPeer returns ctx carrying p, as Serve passes it to Handle. It
// lets handler tests call Handle directly.
func ContextWithPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}
