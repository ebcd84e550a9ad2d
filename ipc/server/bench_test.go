package server_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/server"
)

var trivial = HandlerFunc(func(context.Context, *ipc.Request) *ipc.Response {
	return &ipc.Response{Username: "labuser", Secret: "labpass"}
})

// BenchmarkRoundTrip measures one helper call end to end as the helper makes
// it: dial, write a get, SO_PEERCRED, decode, handle, encode, read, close.
// Logs go to a discarding handler at the server's default verbosity.
func BenchmarkRoundTrip(b *testing.B) {
	r := start(b, trivial, server.Options{Logger: slog.New(slog.DiscardHandler)})
	req := &ipc.Request{Op: ipc.OpGet, ServerURL: "127.0.0.1:5000"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.client.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTripParallel is many helpers at once (a parallel compose
// pull), within the default MaxConns.
func BenchmarkRoundTripParallel(b *testing.B) {
	r := start(b, trivial, server.Options{Logger: slog.New(slog.DiscardHandler)})
	req := &ipc.Request{Op: ipc.OpGet, ServerURL: "127.0.0.1:5000"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.client.Do(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
