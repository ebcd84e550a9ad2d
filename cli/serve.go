package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all" // registers the built-in connector types
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/version"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/server"
	"github.com/connectord/connectord/registry"
)

// paths are the daemon's file locations after flags, environment and
// the config file's [daemon] table have been applied, in that order of
// precedence.
type paths struct {
	config, socket, store string
}

func (e *env) resolvePaths(configFlag, socketFlag, storeFlag string, f *config.File) paths {
	p := paths{config: configFlag, socket: socketFlag, store: storeFlag}
	if p.config == "" {
		p.config = config.DefaultPath(e.getenv)
	}
	if p.socket == "" {
		switch {
		case e.getenv("CONNECTORD_SOCKET") != "":
			p.socket = e.getenv("CONNECTORD_SOCKET")
		case f != nil && f.Daemon.Socket != "":
			p.socket = f.Daemon.Socket
		default:
			p.socket = ipc.SocketPath(e.getenv)
		}
	}
	if p.store == "" {
		if f != nil && f.Daemon.Store != "" {
			p.store = f.Daemon.Store
		} else {
			p.store = config.DefaultStorePath(e.getenv)
		}
	}
	return p
}

func runServe(e *env, args []string) int {
	fs := e.flagSet("serve", "[flags]", "Run the daemon in the foreground: load the config, build its connectors,\nopen the credential store and serve the socket until SIGINT or SIGTERM.")
	configFlag := fs.String("config", "", "config file (default $CONNECTORD_CONFIG or $XDG_CONFIG_HOME/connectord/config.toml)")
	socketFlag := fs.String("socket", "", "socket path (default $CONNECTORD_SOCKET or $XDG_RUNTIME_DIR/connectord/connectord.sock)")
	storeFlag := fs.String("store", "", "stored-credentials file (default $XDG_STATE_HOME/connectord/credentials.json)")
	levelFlag := fs.String("log-level", "", "debug, info, warn or error (default from the config, else info)")
	if code, ok := e.parse(fs, args, 0); !ok {
		return code
	}

	cfgPath := e.resolvePaths(*configFlag, "", "", nil).config
	f, err := config.Load(cfgPath)
	noConfig := errors.Is(err, config.ErrNoConfig)
	if err != nil && !noConfig {
		// At start-up there is no running config to keep: refuse, listing
		// every problem, rather than serve something the user did not write.
		return e.fail("%v", err)
	}
	p := e.resolvePaths(*configFlag, *socketFlag, *storeFlag, f)

	level := slog.LevelInfo
	name := *levelFlag
	if name == "" && f != nil {
		name = f.Daemon.LogLevel
	}
	if name != "" {
		if err := level.UnmarshalText([]byte(name)); err != nil {
			return e.fail("bad log level %q: %v", name, err)
		}
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	st, err := openStore(p.store, f, log)
	if err != nil {
		return e.fail("%v", err)
	}

	ctx, stop := signal.NotifyContext(e.ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	d := daemon.New(daemon.Options{
		Logger: log, Store: st, ConfigPath: p.config, StorePath: p.store,
		Version: version.Version, Shutdown: stop,
	})
	if noConfig {
		log.Info("no config file; starting with no connectors (stored credentials are still served)", "config", p.config)
	}
	loaded, err := d.Reload(registry.Default, connectors.OSResolver{})
	if err != nil {
		return e.fail("%v", err)
	}
	watcher, err := config.NewWatcher(100*time.Millisecond, log)
	if err != nil {
		return e.fail("watching the config: %v", err)
	}
	// Armed before the socket answers, so a write right after start is seen.
	watcher.SetFiles(loaded.Files)
	go e.reloadLoop(ctx, d, watcher, log)

	ln, err := server.Listen(p.socket)
	if errors.Is(err, server.ErrAlreadyListening) {
		// Losing an autostart race is normal: say so in one line and
		// let `connectord start` know a daemon is there.
		fmt.Fprintf(e.stderr, "connectord: %v\n", err)
		return exitAlreadyRunning
	}
	if err != nil {
		return e.fail("%v", err)
	}
	log.Info("connectord serving", "version", version.Version, "socket", p.socket, "store", p.store, "pid", os.Getpid())
	srv := server.New(d, server.Options{Logger: log})
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return e.fail("serve: %v", err)
	}
	log.Info("connectord stopped")
	return exitOK
}

// reloadLoop reloads on a change to the config (or a secret file it
// names) and on SIGHUP. A failed reload keeps the running config; the
// daemon logs every problem and status shows it.
func (e *env) reloadLoop(ctx context.Context, d *daemon.Daemon, w *config.Watcher, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := func(why string) {
		r, err := d.Reload(registry.Default, connectors.OSResolver{})
		w.SetFiles(r.Files)
		if err == nil && !r.Changed {
			log.Debug("config unchanged", "trigger", why)
		}
	}
	go w.Run(ctx, func() { reload("file change") })
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the config")
			reload("SIGHUP")
		}
	}
}
