package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrAlreadyListening is returned (wrapped) by Listen when another daemon
// owns the socket path. Whoever autostarts the daemon can treat it as
// success: a daemon is there, dial again.
var ErrAlreadyListening = errors.New("another connectord is already listening")

// maxSocketPath is the size of sockaddr_un.sun_path on Linux, including the
// terminating NUL.
const maxSocketPath = 108

// probeTimeout bounds the dial that asks whether an existing socket is live.
// A live daemon's kernel accepts a local connection at once, even before the
// daemon calls accept.
const probeTimeout = time.Second

// Listen creates the daemon's socket at path and listens on it.
//
//   - The parent directory is created with mode 0700 if missing. It must be
//     a real directory (not a symlink) owned by us; if it is ours but looser
//     than 0700 it is tightened, since the directory is what keeps other
//     users away from the socket. So point CONNECTORD_SOCKET at a directory
//     of its own, never at one such as $HOME whose mode you want kept.
//   - An existing socket file is probed: if a daemon answers, Listen fails
//     with ErrAlreadyListening; if the connection is refused (the daemon
//     died without removing it), the stale file is removed. Anything else at
//     path (a regular file, a symlink) is left alone and is an error.
//   - The socket is chmod'ed to 0600 explicitly: bind creates it with the
//     process umask, which we do not control (and changing it is
//     process-wide, so racy).
//
// The returned listener removes the socket file when closed. It is not a
// *net.UnixListener but embeds one.
//
// # The stale-socket race, and the lock file
//
// "Probe, remove if stale, bind" is not atomic. With a stale socket left by
// a crashed daemon, two daemons started at once (two helpers autostarting
// during a parallel `docker compose pull`) can both probe and get
// ECONNREFUSED; A removes the file and binds; B then removes A's brand-new
// socket and binds its own. A keeps running, listening on a socket no
// client can reach any more, forever. Binding first and removing on
// EADDRINUSE does not help: the remove still races.
//
// So Listen first takes an exclusive flock on path+".lock" (same directory,
// 0600) and holds it for the listener's lifetime: only the holder may probe,
// remove and bind, and a second daemon fails at once with
// ErrAlreadyListening. The kernel drops the lock when the process dies,
// however it dies, so the lock can never go stale. The lock file itself is
// never removed; removing it would reopen the race (a new daemon could lock
// a fresh inode while an old one still holds the unlinked one).
//
// A daemon started by systemd socket activation does not call Listen, so
// holds no lock; a manual second daemon still finds its socket live on the
// probe and refuses.
func Listen(path string) (net.Listener, error) {
	if len(path) >= maxSocketPath {
		return nil, fmt.Errorf("ipc/server: socket path %s is %d bytes, longer than the %d a Unix socket allows; set CONNECTORD_SOCKET to a shorter path", path, len(path), maxSocketPath-1)
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	ln, err := listenLocked(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &listener{UnixListener: ln, lock: lock}, nil
}

// ensureDir makes dir a 0700 directory owned by us, or says why it cannot.
func ensureDir(dir string) error {
	_, statErr := os.Lstat(dir)
	created := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ipc/server: creating socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ipc/server: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("ipc/server: socket directory %s is not a directory (%s); refusing to use it", dir, fi.Mode().Type())
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("ipc/server: cannot tell who owns %s", dir)
	}
	if me := os.Geteuid(); int64(st.Uid) != int64(me) {
		// Another user could read, replace or redirect our socket.
		return fmt.Errorf("ipc/server: socket directory %s is owned by uid %d, not by us (uid %d); refusing to use it", dir, st.Uid, me)
	}
	// Tighten only a directory that is connectord's own (created here, or
	// named connectord*): CONNECTORD_SOCKET=/tmp/x.sock must not chmod
	// /tmp. The socket itself is 0600, which is what stops other users.
	const want = 0o700
	own := created || filepath.Base(dir) == "connectord" || strings.HasPrefix(filepath.Base(dir), "connectord-")
	if own && fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != want {
		if err := os.Chmod(dir, want); err != nil {
			return fmt.Errorf("ipc/server: tightening socket directory to 0700: %w", err)
		}
	}
	return nil
}

// lockFile takes the exclusive lock that serialises daemons on path.
func lockFile(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipc/server: opening lock file: %w", err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ipc/server: lock file: %w", err)
	}
	var lerr error
	if err := raw.Control(func(fd uintptr) {
		lerr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
	}); err != nil {
		lerr = err
	}
	if lerr != nil {
		f.Close()
		if errors.Is(lerr, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w on %s (it holds %s)", ErrAlreadyListening, path, name)
		}
		return nil, fmt.Errorf("ipc/server: locking %s: %w", name, lerr)
	}
	return f, nil
}

// listenLocked replaces a stale socket and binds. The caller holds the lock.
func listenLocked(path string) (*net.UnixListener, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("ipc/server: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("ipc/server: %s exists and is not a socket (%s); refusing to replace it", path, fi.Mode().Type())
	default:
		conn, derr := net.DialTimeout("unix", path, probeTimeout)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("%w on %s", ErrAlreadyListening, path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			// Not provably dead (a full backlog, a timeout): removing it
			// could orphan a live daemon.
			return nil, fmt.Errorf("ipc/server: %s exists and could not be probed: %w", path, derr)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("ipc/server: removing stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w on %s: %w", ErrAlreadyListening, path, err)
		}
		return nil, fmt.Errorf("ipc/server: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ipc/server: chmod socket: %w", err)
	}
	return ln, nil
}

// listener is the *net.UnixListener from Listen plus its lock.
type listener struct {
	*net.UnixListener
	lock *os.File
	once sync.Once
	err  error
}

// Close removes the socket file, then releases the lock: in that order, so
// a successor that gets the lock never sees our socket.
func (l *listener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		l.lock.Close()
	})
	return l.err
}
