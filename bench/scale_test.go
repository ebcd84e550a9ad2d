package bench_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/registry"
)

// scaleSizes are the connector counts BenchmarkScale runs at.
var scaleSizes = []int{100, 1_000, 10_000}

// BenchmarkScale runs the daemon with N = 100, 1,000 and 10,000 docker
// connectors, each for its own registry host, and measures what must stay
// flat (per connector) or small as N grows:
//
//   - load: config.Load and File.Build of the whole file, as at start-up
//     (ms/load; cpu-ms/load is the process's CPU time for it, GC
//     included, which other load on the machine disturbs less).
//     heap-MiB is the daemon's live heap once it has loaded the N
//     connectors (after runtime.GC, measured against the heap before it
//     was created) and heap-B/connector that divided by N.
//   - reload: daemon.Reload of a file in which one connector's password
//     changed; it reads, decodes and validates the whole file, diffs it
//     against the running set and swaps (ms/reload, and cpu-ms/reload as
//     for load). Writing the file is not timed.
//   - get: a get over the socket with a fresh connection, as the helper
//     makes it, cycling through all N hosts (µs/get; errors as in
//     BenchmarkDaemonGet).
//   - handle: the same get without the socket, Daemon.Handle called
//     directly, i.e. the lookup alone (ns/op).
func BenchmarkScale(b *testing.B) {
	for _, n := range scaleSizes {
		b.Run(fmt.Sprintf("n=%d/load", n), func(b *testing.B) { benchLoad(b, n) })
		b.Run(fmt.Sprintf("n=%d/reload", n), func(b *testing.B) { benchReload(b, n) })
		b.Run(fmt.Sprintf("n=%d/get", n), func(b *testing.B) { benchGet(b, n) })
		b.Run(fmt.Sprintf("n=%d/handle", n), func(b *testing.B) { benchHandle(b, n) })
	}
}

func benchLoad(b *testing.B, n int) {
	dir, path := writeConfig(b, configText(n, "pass00000"))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		f, err := config.Load(path)
		if err != nil {
			b.Fatal(err)
		}
		list, err := f.Build(registry.Default, connectors.OSResolver{})
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != n {
			b.Fatalf("built %d connectors, want %d", len(list), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/load")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1e3/float64(b.N), "cpu-ms/load")

	// The daemon's footprint: the live heap before and after a daemon
	// loads the file, with everything else collected.
	before := liveHeap()
	d := loadDaemon(b, dir, path)
	after := liveHeap()
	if got := len(d.Connectors()); got != n {
		b.Fatalf("daemon runs %d connectors, want %d", got, n)
	}
	grown := float64(after) - float64(before)
	b.ReportMetric(grown/(1<<20), "heap-MiB")
	b.ReportMetric(grown/float64(n), "heap-B/connector")
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func benchReload(b *testing.B, n int) {
	s := newDaemon(b, configText(n, "pass00000"))
	// Two versions of the file that differ in connector c00000's password
	// only, written in turn so that every reload changes exactly one.
	versions := [2][]byte{[]byte(configText(n, "changed-a")), []byte(configText(n, "changed-b"))}
	b.ReportAllocs()
	i := 0
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(s.config, versions[i%2], 0o600); err != nil {
			b.Fatal(err)
		}
		i++
		cpu0 := cpuTime()
		b.StartTimer()
		r, err := s.d.Reload(registry.Default, connectors.OSResolver{})
		b.StopTimer()
		cpu += cpuTime() - cpu0
		b.StartTimer()
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Updated) != 1 || len(r.Added)+len(r.Removed) != 0 {
			b.Fatalf("reload: added %v, updated %v, removed %v; want only c00000 updated", r.Added, r.Updated, r.Removed)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/reload")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/reload")
}

// requests are gets for every host of an N-connector config.
func requests(n int) []*ipc.Request {
	reqs := make([]*ipc.Request, n)
	for i := range reqs {
		reqs[i] = &ipc.Request{Op: ipc.OpGet, ServerURL: host(i)}
	}
	return reqs
}

func benchGet(b *testing.B, n int) {
	s := startStack(b, configText(n, "pass00000"))
	reqs := requests(n)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	var (
		failed  int64
		lastErr error
	)
	for b.Loop() {
		resp, err := s.client.Do(ctx, reqs[i%n])
		i++
		if err != nil {
			failed++
			lastErr = err
			continue
		}
		if resp.Username == "" {
			b.Fatal("get answered no username")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N), "µs/get")
	b.ReportMetric(float64(failed), "errors")
	checkErrors(b, failed, lastErr)
}

func benchHandle(b *testing.B, n int) {
	s := newDaemon(b, configText(n, "pass00000"))
	reqs := requests(n)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if resp := s.d.Handle(ctx, reqs[i%n]); resp.Error != nil {
			b.Fatal(resp.Error)
		}
		i++
	}
}
