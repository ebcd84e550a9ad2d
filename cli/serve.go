package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
	_ "github.com/connectord/connectord/connectors/all" // registers the built-in connector types
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/internal/systemd"
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

	// Take the socket before loading the config: a daemon that lost an
	// autostart race leaves at once, before it runs exec credential
	// sources for nothing, and clients that connect meanwhile wait in
	// the backlog for the connectors to load, as they would under socket
	// activation.
	lns, activated, err := daemonListeners(p.socket, log)
	if errors.Is(err, server.ErrAlreadyListening) {
		// Losing an autostart race is normal: say so in one line and
		// let `connectord start` know a daemon is there.
		fmt.Fprintf(e.stderr, "connectord: %v\n", err)
		return exitAlreadyRunning
	}
	if err != nil {
		return e.fail("%v", err)
	}
	// Serve closes them on every path that reaches it; this covers a
	// failed start, so that Listen's socket file does not linger.
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()

	var getWait time.Duration
	if f != nil {
		getWait = f.Daemon.GetWait
	}
	d := daemon.New(daemon.Options{
		Logger: log, Store: st, ConfigPath: p.config, StorePath: p.store,
		Version: version.Version, Shutdown: stop, GetWait: getWait,
	})
	// Stops the background refreshes; the socket closes first (Serve).
	defer d.Close()
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
	// Catch SIGHUP and watch the files before serving and before
	// READY=1: SIGHUP's default action kills the process (and READY
	// invites `systemctl reload`), and a change made just after start
	// must not go unnoticed.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watcher.SetFiles(loaded.Files)
	go e.reloadLoop(ctx, d, watcher, hup, log)

	log.Info("connectord serving", "version", version.Version, "socket", listenAddrs(lns), "socket_activated", activated, "store", p.store, "pid", os.Getpid())
	srv := server.New(d, server.Options{Logger: log})
	reportNotify(log, systemd.Ready(connectorsStatus(len(d.Connectors()))))
	// STOPPING=1 as soon as shutdown begins, not after the drain, so
	// that systemd shows the unit deactivating while requests finish;
	// or when a listener fails, since the daemon is leaving then too.
	served, stopping := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-served:
		}
		reportNotify(log, systemd.Stopping())
		close(stopping)
	}()
	err = serveAll(ctx, srv, lns)
	close(served)
	<-stopping
	if err != nil && !errors.Is(err, context.Canceled) {
		return e.fail("serve: %v", err)
	}
	log.Info("connectord stopped")
	return exitOK
}

// daemonListeners returns the sockets to serve: the ones systemd passed
// when the daemon is socket-activated (connectord.socket), else a new one
// at path from server.Listen. activated says which.
//
// systemd's sockets are served as they are: closing them at shutdown
// leaves their files in place, since systemd keeps listening on them to
// start the daemon again on the next connection.
func daemonListeners(path string, log *slog.Logger) (lns []net.Listener, activated bool, err error) {
	lns, err = systemd.Listeners()
	if err != nil {
		return nil, false, err
	}
	if len(lns) > 0 {
		for _, ln := range lns {
			if a := ln.Addr().String(); a != path {
				// Clients find the daemon at path, not where systemd
				// listens: the unit and the config disagree.
				log.Warn("systemd passed a socket other than the one clients use; check ListenStream= in connectord.socket and [daemon] socket / CONNECTORD_SOCKET", "passed", a, "socket", path)
			}
		}
		return lns, true, nil
	}
	ln, err := server.Listen(path)
	if err != nil {
		return nil, false, err
	}
	return []net.Listener{ln}, false, nil
}

// serveAll serves every listener until ctx is done or one of them fails,
// which stops the others too.
func serveAll(ctx context.Context, srv *server.Server, lns []net.Listener) error {
	if len(lns) == 1 {
		return srv.Serve(ctx, lns[0])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(lns))
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Go(func() {
			errs[i] = srv.Serve(ctx, ln)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func listenAddrs(lns []net.Listener) string {
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	return strings.Join(addrs, ",")
}

// reportNotify logs a failed systemd notification. It is never fatal: the
// daemon serves the same whether or not systemd heard it.
func reportNotify(log *slog.Logger, err error) {
	if err != nil {
		log.Warn("systemd notification failed", "err", err)
	}
}

// connectorsStatus is the STATUS= line `systemctl status` shows.
func connectorsStatus(n int) string {
	if n == 1 {
		return "1 connector"
	}
	return strconv.Itoa(n) + " connectors"
}

// rejectedStatus is the STATUS= line after a reload that failed. It
// names the file and counts the problems but quotes none of them: the
// log and `connectord status` have the details, and a STATUS line is
// no place to risk a fragment of a config value.
func rejectedStatus(err error, running int) string {
	why := "invalid config"
	var ce *config.Error
	if errors.As(err, &ce) {
		why = fmt.Sprintf("%d problem(s) in %s", len(ce.Problems), ce.Path)
	}
	return fmt.Sprintf("config rejected: %s; still serving %s (see the log or `connectord status`)", why, connectorsStatus(running))
}

// reloadLoop reloads on a change to the config (or a secret file it
// names) and on SIGHUP, which arrives on hup. A failed reload keeps the
// running config; the daemon logs every problem and status shows it.
// systemd hears RELOADING=1, then READY=1 with the outcome in STATUS.
func (e *env) reloadLoop(ctx context.Context, d *daemon.Daemon, w *config.Watcher, hup <-chan os.Signal, log *slog.Logger) {
	reload := func(why string) {
		// RELOADING=1, then READY=1 whatever the outcome: a rejected
		// config leaves the previous one serving, which is still ready.
		reportNotify(log, systemd.Reloading())
		r, err := d.Reload(registry.Default, connectors.OSResolver{})
		w.SetFiles(r.Files)
		if err != nil {
			reportNotify(log, systemd.Ready(rejectedStatus(err, len(d.Connectors()))))
		} else {
			reportNotify(log, systemd.Ready(connectorsStatus(len(d.Connectors()))))
		}
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
