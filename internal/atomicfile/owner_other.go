//go:build !unix

package atomicfile

import "os"

// owner reports no owner where the platform has no uids; EnsureDir then
// skips the ownership check. connectord itself is Unix-only (it serves a
// Unix socket), so this only keeps the package compiling elsewhere.
func owner(os.FileInfo) (int, bool) { return 0, false }
