//go:build !linux

package systemd

// monotonicUsec has nothing to report off Linux, where there is no
// systemd; Reloading then sends RELOADING=1 alone.
func monotonicUsec() (int64, bool) { return 0, false }
