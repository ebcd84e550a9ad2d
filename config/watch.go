package config

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher tells its caller, debounced, that something changed in the
// directories holding the config file and the secret files it names.
//
// It watches directories, not files, because editors save by writing a
// new file and renaming it over the old one, and Kubernetes swaps a
// ConfigMap by re-pointing a "..data" symlink: a watch on the file itself
// would be left on a deleted inode in both cases. Events are kept when
// they name a watched file or a Kubernetes "..*" entry (the ConfigMap
// swap never names the config file itself); others are dropped, so a log
// file that shares the directory cannot make the daemon reload itself in
// a loop.
type Watcher struct {
	log      *slog.Logger
	debounce time.Duration
	fs       *fsnotify.Watcher

	mu      sync.Mutex
	files   map[string]bool // the watched files' cleaned paths
	dirs    map[string]bool // watched
	missing map[string]bool // wanted but absent: polled until they appear
}

// NewWatcher returns a watcher; debounce is how long events must be
// quiet before a change is reported (100 ms suits editors).
func NewWatcher(debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return &Watcher{log: log, debounce: debounce, fs: fsw, files: map[string]bool{}, dirs: map[string]bool{}, missing: map[string]bool{}}, nil
}

// SetFiles makes the watcher cover the directories of files, dropping
// directories no longer needed.
func (w *Watcher) SetFiles(files []string) {
	want, names := map[string]bool{}, map[string]bool{}
	for _, f := range files {
		if f != "" {
			want[filepath.Dir(filepath.Clean(f))] = true
			names[filepath.Clean(f)] = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files = names
	for d := range w.dirs {
		if !want[d] {
			_ = w.fs.Remove(d)
			delete(w.dirs, d)
		}
	}
	w.missing = map[string]bool{}
	for d := range want {
		if w.dirs[d] {
			continue
		}
		if err := w.fs.Add(d); err != nil {
			// Not there yet (a config dir created later): poll for it.
			w.missing[d] = true
			continue
		}
		w.dirs[d] = true
	}
}

// Run reports changes by calling changed until ctx is done. changed runs
// on Run's goroutine, so reloads never overlap.
func (w *Watcher) Run(ctx context.Context, changed func()) {
	defer w.fs.Close()
	var timer <-chan time.Time
	poll := time.NewTicker(2 * time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // touch, chmod: contents did not change
			}
			if !w.relevant(ev.Name) {
				continue
			}
			timer = time.After(w.debounce)
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			// An overflow loses events: re-read to be safe.
			w.log.Warn("config watcher error; re-reading the config", "err", err)
			timer = time.After(w.debounce)
		case <-poll.C:
			if w.adoptMissing() {
				timer = time.After(w.debounce)
			}
		case <-timer:
			timer = nil
			changed()
		}
	}
}

// adoptMissing starts watching wanted directories that have appeared.
func (w *Watcher) adoptMissing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	appeared := false
	for d := range w.missing {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			continue
		}
		if err := w.fs.Add(d); err == nil {
			delete(w.missing, d)
			w.dirs[d] = true
			appeared = true
		}
	}
	return appeared
}

// relevant reports whether an event on name can change what is loaded.
func (w *Watcher) relevant(name string) bool {
	if strings.HasPrefix(filepath.Base(name), "..") {
		return true // a Kubernetes ConfigMap or Secret swap
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.files[filepath.Clean(name)]
}
