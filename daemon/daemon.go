// Package daemon is the heart of connectord: it owns the running set of
// connectors (swapped atomically, so a get never waits on a reload), the
// store of credentials that came through `docker login`, and the answer
// to every request that arrives over the socket.
//
// Resolution of a get: the connector whose resource id covers the asked
// server URL with the longest repository path wins; else the stored
// credential for the registry; else not-found, which the helper turns
// into docker's exact not-found message so the client pulls anonymously.
// A connector that exists but fails is an error naming the connector,
// never a disguised not-found.
package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/resourceid"
	"github.com/connectord/connectord/secret"
	"github.com/connectord/connectord/store"
)

// Store is the part of the credential store the daemon uses.
type Store interface {
	Get(ctx context.Context, key string) (store.Credential, error)
	Put(ctx context.Context, key string, c store.Credential) error
	Delete(ctx context.Context, key string) (bool, error)
	List(ctx context.Context) ([]store.Entry, error)
}

// Options configures a Daemon.
type Options struct {
	Logger     *slog.Logger // nil discards
	Store      Store
	ConfigPath string
	StorePath  string
	Version    string
	// Shutdown is called when a client asks the daemon to stop.
	Shutdown func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Daemon answers requests. Create it with New.
type Daemon struct {
	log     *slog.Logger
	opts    Options
	started time.Time
	set     atomic.Pointer[connectorSet]
	load    atomic.Pointer[LoadResult]
	// reloadMu keeps a SIGHUP and a file change from reloading at once.
	reloadMu sync.Mutex
}

// LoadResult records the outcome of the last config load, for status.
type LoadResult struct {
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	Connectors int       `json:"connectors"`
	Error      string    `json:"error,omitempty"`
}

// New returns a daemon with no connectors.
func New(opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Daemon{log: opts.Logger, opts: opts, started: opts.Now()}
	d.set.Store(newSet(nil))
	return d
}

// SetConnectors swaps in a new connector set. In-flight gets finish on
// the set they started with.
func (d *Daemon) SetConnectors(list []*connectors.Instance) {
	d.set.Store(newSet(list))
	d.load.Store(&LoadResult{At: d.opts.Now(), OK: true, Connectors: len(list)})
}

// RecordLoadError notes a config that failed to load; the running set is
// left as it is.
func (d *Daemon) RecordLoadError(err error) {
	d.load.Store(&LoadResult{At: d.opts.Now(), OK: false, Connectors: len(d.set.Load().list), Error: err.Error()})
}

// Connectors returns the running connectors, sorted by name.
func (d *Daemon) Connectors() []*connectors.Instance { return slices.Clone(d.set.Load().list) }

// Handle implements the ipc server's Handler.
func (d *Daemon) Handle(ctx context.Context, req *ipc.Request) *ipc.Response {
	switch req.Op {
	case ipc.OpGet:
		return d.get(ctx, req.ServerURL)
	case ipc.OpStore:
		return d.store(ctx, req)
	case ipc.OpErase:
		return d.erase(ctx, req.ServerURL)
	case ipc.OpList:
		return d.list(ctx)
	case ipc.OpPing:
		return &ipc.Response{}
	case ipc.OpConnectors:
		return d.connectorsInfo(ctx)
	case ipc.OpStatus:
		return d.status(ctx)
	case ipc.OpDescribe:
		return d.describe(ctx, req)
	case ipc.OpVerify:
		return d.verify(ctx, req)
	case ipc.OpShutdown:
		if d.opts.Shutdown == nil {
			return fail(ipc.Errorf(ipc.CodeInvalid, "this daemon cannot be stopped over the socket"))
		}
		d.log.Info("shutdown requested over the socket")
		d.opts.Shutdown()
		return &ipc.Response{}
	default:
		return fail(ipc.Errorf(ipc.CodeInvalid, "unknown op %q", req.Op))
	}
}

func (d *Daemon) get(ctx context.Context, serverURL string) *ipc.Response {
	rid, err := resourceid.Parse(serverURL)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInvalid, "%v", err))
	}
	if inst := d.set.Load().match(rid); inst != nil {
		c, err := inst.Credentials(ctx, rid)
		if err != nil {
			d.log.Warn("connector failed", "connector", inst.Name, "server", rid.String(), "err", err)
			return fail(ipc.Errorf(ipc.CodeUnavailable, "%v", err))
		}
		d.log.Debug("get", "server", rid.String(), "connector", inst.Name)
		return &ipc.Response{Username: c.Username, Secret: c.Secret.Reveal()}
	}
	c, err := d.opts.Store.Get(ctx, rid.Key())
	switch {
	case errors.Is(err, store.ErrNotFound):
		d.log.Debug("get: nothing for server", "server", rid.String())
		return fail(ipc.Errorf(ipc.CodeNotFound, "no credentials for %s", rid.Key()))
	case err != nil:
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	d.log.Debug("get", "server", rid.String(), "origin", "store")
	return &ipc.Response{Username: c.Username, Secret: c.Secret.Reveal()}
}

func (d *Daemon) store(ctx context.Context, req *ipc.Request) *ipc.Response {
	rid, err := resourceid.Parse(req.ServerURL)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInvalid, "%v", err))
	}
	if req.Username == "" {
		return fail(ipc.Errorf(ipc.CodeInvalid, "store %s: empty username", rid.Key()))
	}
	if inst := d.set.Load().servesRegistry(rid); inst != nil {
		return fail(ipc.Errorf(ipc.CodeConflict,
			"%s is served by connector %q from the config; change its credentials there (or remove that connector) instead of storing new ones", rid.Key(), inst.Name))
	}
	err = d.opts.Store.Put(ctx, rid.Key(), store.Credential{Username: req.Username, Secret: secret.New(req.Secret), UpdatedAt: d.opts.Now()})
	if err != nil {
		d.log.Error("store failed", "registry", rid.Key(), "err", err)
		return fail(ipc.Errorf(ipc.CodeInternal, "storing credentials for %s: %v", rid.Key(), err))
	}
	d.log.Info("stored credentials", "registry", rid.Key())
	return &ipc.Response{}
}

func (d *Daemon) erase(ctx context.Context, serverURL string) *ipc.Response {
	rid, err := resourceid.Parse(serverURL)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInvalid, "%v", err))
	}
	if inst := d.set.Load().servesRegistry(rid); inst != nil {
		return fail(ipc.Errorf(ipc.CodeConflict,
			"%s is served by connector %q from the config; remove it from the config to log out", rid.Key(), inst.Name))
	}
	existed, err := d.opts.Store.Delete(ctx, rid.Key())
	if err != nil {
		d.log.Error("erase failed", "registry", rid.Key(), "err", err)
		return fail(ipc.Errorf(ipc.CodeInternal, "erasing credentials for %s: %v", rid.Key(), err))
	}
	if existed {
		d.log.Info("erased credentials", "registry", rid.Key())
	}
	// docker logout erases host, http://host and https://host in turn:
	// erasing what is not there is success, as in docker's own stores.
	return &ipc.Response{}
}

// usernamer is implemented by connectors that know their username
// without a fetch, so list stays a memory read.
type usernamer interface{ Username() string }

func (d *Daemon) list(ctx context.Context) *ipc.Response {
	out := map[string]string{}
	entries, err := d.opts.Store.List(ctx)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	for _, e := range entries {
		out[e.Key] = e.Credential.Username
	}
	for _, inst := range d.set.Load().list {
		key := inst.RID.Key()
		if inst.RID.Path != "" {
			key = inst.RID.String()
		}
		u := ""
		if n, ok := inst.Impl().(usernamer); ok {
			u = n.Username()
		}
		out[key] = u
	}
	return &ipc.Response{Registries: out}
}

func (d *Daemon) connectorsInfo(ctx context.Context) *ipc.Response {
	infos := []connectors.Info{}
	for _, inst := range d.set.Load().list {
		infos = append(infos, d.info(inst))
	}
	entries, err := d.opts.Store.List(ctx)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	for _, e := range entries {
		infos = append(infos, storedInfo(e))
	}
	return dataResponse(infos)
}

func storedInfo(e store.Entry) connectors.Info {
	rid, err := resourceid.Parse(e.Key)
	name := e.Key
	if err == nil {
		name = rid.String()
	}
	return connectors.Info{
		ID: connectors.StoreID(e.Key).String(), Name: name, Type: "docker", AuthMethod: "password",
		ResourceType: connectors.ResourceTypeDockerRegistry, ResourceID: name, Origin: "store",
		Config: map[string]any{"username": e.Credential.Username, "password": secret.Mask},
	}
}

// Status is what `connectord status` shows.
type Status struct {
	Version    string      `json:"version"`
	PID        int         `json:"pid"`
	StartedAt  time.Time   `json:"started_at"`
	Uptime     string      `json:"uptime"`
	ConfigPath string      `json:"config_path"`
	StorePath  string      `json:"store_path"`
	LastLoad   *LoadResult `json:"last_load,omitempty"`
	Connectors int         `json:"connectors"`
	Stored     int         `json:"stored_credentials"`
}

func (d *Daemon) status(ctx context.Context) *ipc.Response {
	entries, err := d.opts.Store.List(ctx)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInternal, "reading the credential store: %v", err))
	}
	return dataResponse(Status{
		Version: d.opts.Version, PID: os.Getpid(), StartedAt: d.started,
		Uptime:     d.opts.Now().Sub(d.started).Round(time.Second).String(),
		ConfigPath: d.opts.ConfigPath, StorePath: d.opts.StorePath,
		LastLoad: d.load.Load(), Connectors: len(d.set.Load().list), Stored: len(entries),
	})
}

func dataResponse(v any) *ipc.Response {
	b, err := json.Marshal(v)
	if err != nil {
		return fail(ipc.Errorf(ipc.CodeInternal, "encoding response: %v", err))
	}
	return &ipc.Response{Data: b}
}

func fail(e *ipc.Error) *ipc.Response { return &ipc.Response{Error: e} }

// connectorSet is an immutable snapshot of the running connectors.
type connectorSet struct {
	list []*connectors.Instance
	// byHost holds each host's connectors, longest repository path first,
	// so the first that covers a request is the most specific.
	byHost map[string][]*connectors.Instance
}

func newSet(list []*connectors.Instance) *connectorSet {
	s := &connectorSet{list: slices.Clone(list), byHost: map[string][]*connectors.Instance{}}
	slices.SortFunc(s.list, func(a, b *connectors.Instance) int { return cmp.Compare(a.Name, b.Name) })
	for _, inst := range s.list {
		if inst.ResourceType == connectors.ResourceTypeDockerRegistry && inst.RID.Host != "" {
			s.byHost[inst.RID.Host] = append(s.byHost[inst.RID.Host], inst)
		}
	}
	for _, l := range s.byHost {
		slices.SortStableFunc(l, func(a, b *connectors.Instance) int { return cmp.Compare(len(b.RID.Path), len(a.RID.Path)) })
	}
	return s
}

func (s *connectorSet) match(rid resourceid.ID) *connectors.Instance {
	for _, inst := range s.byHost[rid.Host] {
		if inst.Covers(rid) {
			return inst
		}
	}
	return nil
}

// servesRegistry returns a config connector for rid's registry, at any
// path: a stored credential for that host would silently shadow it or be
// shadowed by it, so store and erase refuse.
func (s *connectorSet) servesRegistry(rid resourceid.ID) *connectors.Instance {
	if l := s.byHost[rid.Host]; len(l) > 0 {
		return l[len(l)-1] // the broadest: name the registry-wide connector
	}
	return nil
}
