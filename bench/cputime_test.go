package bench_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system, all threads, GC included) this
// process has used. Unlike wall time it does not grow while the process
// waits for a CPU that other processes hold, so it is the steadier figure
// on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
