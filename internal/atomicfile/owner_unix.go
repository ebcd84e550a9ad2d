//go:build unix

package atomicfile

import (
	"os"
	"syscall"
)

// owner returns the uid that owns fi.
func owner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
