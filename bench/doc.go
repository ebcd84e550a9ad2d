// Package bench holds connectord's benchmarks; it has no code of its own.
//
// The Go benchmarks (the _test.go files here) drive the real daemon stack
// in-process: config.Load and Build with the built-in connector types,
// daemon.New and daemon.Reload, ipc/server on a Unix socket in a short
// temporary directory, and ipc/client for every get, exactly the calls
// `connectord serve` and the credential helper make.
//
//   - BenchmarkDaemonGet: gets per second with 1, 8 and 64 concurrent
//     clients, each get a fresh connection as the helper makes it.
//   - BenchmarkScale: 100, 1,000 and 10,000 connectors (one registry host
//     each): load time, reload time with one connector changed, heap in
//     use, and get latency over the socket and in-process.
//
// The commands beside them serve bench/helpers.sh, which times whole
// processes with hyperfine: bench/floor is the floor (a Go program that
// prints a fixed credential), bench/credfixed and bench/rawsocket are the
// steps between it and the helper in the profile, and bench/report turns
// hyperfine's JSON and `go test -bench` output into tables. `make bench`
// runs all of it; BENCHMARKS.md says how to reproduce each figure and what
// it was.
package bench
