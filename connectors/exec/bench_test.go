package exec_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/testenv"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/ipc/server"
	"github.com/connectord/connectord/registry"
	"github.com/connectord/connectord/store"
)

// benchSource is a credential source for the benchmark: a shell script
// (a process start per fetch, like a real helper) whose credential lives
// $LIFE_SECONDS, counting its calls in $CALLS. TestMain writes it.
const benchSource = `#!/bin/sh
cat > /dev/null
printf '{"Username":"bench","Secret":"bench-secret","ExpiresAt":"%s"}\n' "$(date -u -d "+$LIFE_SECONDS seconds" +%Y-%m-%dT%H:%M:%S.%NZ)"
[ -n "$CALLS" ] && echo >> "$CALLS"
exit 0
`

// benchConnectors is how many exec connectors the daemon serves (one
// registry each); with 2 s credentials they renew about 13 times a second
// between them.
const benchConnectors = 16

// BenchmarkGetOverSocket measures the latency of a get over the real
// socket (ipc client → server → daemon → cache hit), reported as p50 and
// p99 in ns, with the connectors' credentials renewing in the background
// (2 s lifetimes: each renews every ~1.2 s by starting a process) and
// with no renewals (1 h lifetimes). Run it with -benchtime=5s or more so
// that many renewals fall within the measurement.
func BenchmarkGetOverSocket(b *testing.B) {
	for _, bc := range []struct {
		name string
		life int
	}{
		{"no-refresh", 3600},
		{"refreshing", 2},
	} {
		b.Run(bc.name, func(b *testing.B) { benchGet(b, bc.life) })
	}
}

func benchGet(b *testing.B, lifeSeconds int) {
	dir := testenv.ShortTempDir(b)
	calls := filepath.Join(dir, "calls")
	var cfg strings.Builder
	cfg.WriteString("version = 1\n")
	for i := range benchConnectors {
		fmt.Fprintf(&cfg, `
[[connector]]
name = "c%d"
type = "exec"
auth_method = "command"
resource_id = "reg%d.example"
[connector.config]
command = [%q]
env = { LIFE_SECONDS = "%d", CALLS = %q }
`, i, i, script("benchsource"), lifeSeconds, calls)
	}
	f, err := config.Parse("bench.toml", []byte(cfg.String()))
	if err != nil {
		b.Fatal(err)
	}
	list, err := f.Build(registry.Default, connectors.OSResolver{})
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "store.json"))
	if err != nil {
		b.Fatal(err)
	}
	d := daemon.New(daemon.Options{Store: st})
	defer d.Close()
	d.SetConnectors(list)
	sock := filepath.Join(dir, "s.sock")
	ln, err := server.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = server.New(d, server.Options{}).Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()

	c := client.New(sock)
	get := func(i int) {
		resp, err := c.Do(ctx, &ipc.Request{Op: ipc.OpGet, ServerURL: fmt.Sprintf("reg%d.example", i%benchConnectors)})
		if err != nil || resp.Username != "bench" {
			b.Fatalf("get: %v %+v", err, resp)
		}
	}
	// Fetch every credential once, so that all of them renew from now on.
	for i := range benchConnectors {
		get(i)
	}
	before := countLines(calls)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		t0 := time.Now()
		get(i)
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	refreshes := countLines(calls) - before
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*50/100].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(refreshes)/elapsed.Seconds(), "refreshes/s")
}

func countLines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}
