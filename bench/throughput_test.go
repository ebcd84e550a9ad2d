package bench_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
)

// Environment variables that point BenchmarkDaemonGet's server=daemon at
// a daemon running in another process (bench/helpers.sh sets them for the
// `connectord serve` it starts) instead of the in-process stack.
const (
	envSocket    = "CONNECTORD_BENCH_SOCKET"
	envServerURL = "CONNECTORD_BENCH_SERVER_URL"
)

// BenchmarkDaemonGet measures the daemon's throughput: gets per second
// with 1, 8 and 64 clients asking at once, each get a new connection
// (dial, request, SO_PEERCRED, decode, lookup, encode, close) as the
// helper makes it. The clients run in this process, on the same cores as
// the daemon, so the figure is what the daemon serves while its load
// generator competes with it for the CPU.
//
// Each client count has two sub-benchmarks, run back to back so that they
// see the same machine load: server=daemon is the real stack
// (daemon.New, ipc/server, one docker connector, logs at info into a
// discarding handler, as `connectord serve` runs); server=bare is the
// reference, a bare Unix-socket server that reads one line per connection
// and writes a fixed answer, with no peer check, JSON, lookup or logging,
// loaded by the same ipc/client. Their ratio is the cost of the daemon's
// stack over the socket itself.
//
// Metrics: gets/s (b.N over wall time), p50-µs and p99-µs (the latency of
// single gets as the clients saw it), and cpu-µs/get, this process's CPU
// time per get: clients and, in-process, the server too. Against a daemon
// in another process it is the clients' share only. errors counts failed
// gets; more than 1% fails the benchmark (see checkErrors).
func BenchmarkDaemonGet(b *testing.B) {
	daemonClient, serverURL := daemonUnderTest(b)
	bareClient := client.New(bareServer(b))
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d/server=daemon", clients), func(b *testing.B) {
			loadGets(b, daemonClient, serverURL, clients)
		})
		b.Run(fmt.Sprintf("clients=%d/server=bare", clients), func(b *testing.B) {
			loadGets(b, bareClient, serverURL, clients)
		})
	}
}

// loadGets makes b.N gets through c from clients goroutines at once.
func loadGets(b *testing.B, c *client.Client, serverURL string, clients int) {
	req := &ipc.Request{Op: ipc.OpGet, ServerURL: serverURL}
	ctx := context.Background()
	if _, err := c.Do(ctx, req); err != nil {
		b.Fatal(err)
	}
	var (
		next    atomic.Int64
		failed  atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		latency = make([]time.Duration, 0, b.N)
		lastErr error
	)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/clients+1)
			defer func() {
				mu.Lock()
				latency = append(latency, mine...)
				mu.Unlock()
			}()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if _, err := c.Do(ctx, req); err != nil {
					failed.Add(1)
					mu.Lock()
					lastErr = err
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "gets/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/get")
	b.ReportMetric(float64(failed.Load()), "errors")
	checkErrors(b, failed.Load(), lastErr)
	slices.Sort(latency)
	if len(latency) > 0 {
		b.ReportMetric(float64(latency[len(latency)/2])/1e3, "p50-µs")
		b.ReportMetric(float64(latency[len(latency)*99/100])/1e3, "p99-µs")
	}
}

// checkErrors fails the benchmark when more than 1% of its gets failed.
// A few failures are tolerated, counted in the "errors" metric and
// logged: on a machine shared with other load, a client stalled for more
// than client.DefaultDialTimeout (1s) between starting its dial and
// connecting gets "i/o timeout", which says nothing about the daemon.
func checkErrors(b *testing.B, failed int64, last error) {
	if failed == 0 {
		return
	}
	if failed*100 > int64(b.N) {
		b.Fatalf("%d of %d gets failed, the last with: %v", failed, b.N, last)
	}
	b.Logf("%d of %d gets failed (tolerated, under 1%%), the last with: %v", failed, b.N, last)
}

// daemonUnderTest returns a client of the daemon to load and the server
// URL its connector serves: the daemon named by CONNECTORD_BENCH_SOCKET
// and CONNECTORD_BENCH_SERVER_URL, else an in-process stack with one
// connector.
func daemonUnderTest(b *testing.B) (*client.Client, string) {
	if sock := os.Getenv(envSocket); sock != "" {
		url := os.Getenv(envServerURL)
		if url == "" {
			b.Fatalf("%s is set but %s is not", envSocket, envServerURL)
		}
		b.Logf("server=daemon is the daemon on %s (another process), get %s", sock, url)
		return client.New(sock), url
	}
	s := startStack(b, configText(1, "pass00000"))
	return s.client, host(0)
}

// bareServer serves a fixed answer to any request on a fresh socket until
// cleanup: a goroutine per connection that reads one line, writes one
// line and closes.
func bareServer(b *testing.B) string {
	path := filepath.Join(shortDir(b), "bare.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`{"v":1,"username":"user00000","secret":"pass00000"}` + "\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			go func() {
				defer conn.Close()
				if _, err := bufio.NewReader(conn).ReadSlice('\n'); err != nil {
					return
				}
				_, _ = conn.Write(answer)
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return path
}
