// Package daemon is the heart of connectord: it owns the running set of
// connectors (swapped atomically, so a get never waits on a reload), the
// store of credentials that came through `docker login`, and the answer
// to every request that arrives over the socket.
//
// Resolution of a get: among the connectors bound to the asked registry
// host, the one whose resource id covers the server URL with the longest
// repository path wins; else, among the glob connectors
// ("*.dkr.ecr.*.amazonaws.com"), the most specific that matches (fewest
// wildcards, then the longest pattern; see resourceid.ComparePatterns), so
// an exact host always beats a glob; else the stored credential for the
// registry; else not-found, which the helper turns into docker's exact
// not-found message so the client pulls anonymously. A connector that
// exists but fails is an error naming the connector, never a disguised
// not-found.
//
// Connectors whose auth method issues expiring credentials (it declares
// expiration bounds) are served through a refresh.Cache: renewed in the
// background, shared among concurrent gets, never handed out within their
// skew of expiry. The others are asked on every get.
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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/refresh"
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
	// GetWait bounds how long a get waits for an expiring connector's
	// fetch when no usable credential is cached; 0 means
	// refresh.DefaultWait (10 s). It must stay below the helper's own
	// request timeout (30 s) so the client hears the reason.
	GetWait time.Duration
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
	// cache serves the expiring connectors.
	cache *refresh.Cache
	// setMu serialises SetConnectors, which reads the running set to
	// carry unchanged connectors over.
	setMu sync.Mutex
	// gen numbers connector definitions, for cache source ids.
	gen atomic.Uint64
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
	d := &Daemon{log: opts.Logger, opts: opts, started: opts.Now(),
		cache: refresh.New(refresh.Options{Logger: opts.Logger, Wait: opts.GetWait})}
	d.set.Store(newSet(nil, nil))
	return d
}

// Close stops the background refreshes and cancels the fetches in
// progress; gets for expiring connectors fail afterwards. Call it when
// the daemon stops serving.
func (d *Daemon) Close() { d.cache.Close() }

// SetConnectors swaps in a new connector set. In-flight gets finish on
// the set they started with.
//
// A connector whose definition did not change (same id,
// connectors.Instance.SameDefinition) is carried over as the running
// instance, with its cached credentials and their renewal timers; a new
// or changed one starts afresh under a new cache source. The sources of
// connectors that are gone are dropped from the cache before the swap, so
// a removed connector stops refreshing, and a fetch it still had in
// flight keeps nothing.
func (d *Daemon) SetConnectors(list []*connectors.Instance) {
	d.setMu.Lock()
	defer d.setMu.Unlock()
	old := d.set.Load()
	running := make(map[string]*connectors.Instance, len(old.list))
	for _, inst := range old.list {
		running[inst.ID.String()] = inst
	}
	sources := make(map[*connectors.Instance]string, len(list))
	next := make([]*connectors.Instance, 0, len(list))
	for _, inst := range list {
		if o := running[inst.ID.String()]; o != nil && o.SameDefinition(inst) {
			inst = o
			sources[inst] = old.sources[o]
		} else {
			sources[inst] = inst.ID.String() + "#" + strconv.FormatUint(d.gen.Add(1), 10)
		}
		next = append(next, inst)
	}
	live := make(map[string]bool, len(sources))
	for _, src := range sources {
		live[src] = true
	}
	d.cache.Retain(func(src string) bool { return live[src] })
	d.set.Store(newSet(next, sources))
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
	set := d.set.Load()
	if inst := set.match(rid); inst != nil {
		var c connectors.Credentials
		if inst.Expiring() {
			c, err = d.cache.Get(ctx, set.request(inst, rid))
		} else {
			c, err = inst.Credentials(ctx, rid)
		}
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
		if inst.IsGlob() {
			// A glob names no registry a client could look up.
			continue
		}
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

// withRefreshState adds an expiring connector's refresh state to its
// Info; expires_at becomes the current credential's expiry.
func (d *Daemon) withRefreshState(inst *connectors.Instance, i connectors.Info) connectors.Info {
	if !inst.Expiring() {
		return i
	}
	st, ok := d.cache.Status(d.set.Load().sources[inst])
	if !ok {
		return i
	}
	if !st.ExpiresAt.IsZero() {
		i.ExpiresAt = timePtr(st.ExpiresAt)
	}
	i.LastRefresh, i.NextRefresh = timePtr(st.LastRefresh), timePtr(st.NextRefresh)
	if st.LastError != nil {
		i.LastError, i.LastErrorAt = st.LastError.Error(), timePtr(st.LastErrorAt)
	}
	i.Attempts = st.Attempts
	return i
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.Round(0) // drop the monotonic reading
	return &t
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
	// globs holds the glob connectors, most specific first
	// (resourceid.ComparePatterns; names break ties): tried after byHost.
	globs []*connectors.Instance
	// sources is each connector's cache source id: its id and the
	// generation of its definition.
	sources map[*connectors.Instance]string
}

func newSet(list []*connectors.Instance, sources map[*connectors.Instance]string) *connectorSet {
	s := &connectorSet{list: slices.Clone(list), byHost: map[string][]*connectors.Instance{}, sources: sources}
	slices.SortFunc(s.list, func(a, b *connectors.Instance) int { return cmp.Compare(a.Name, b.Name) })
	for _, inst := range s.list {
		switch {
		case inst.ResourceType != connectors.ResourceTypeDockerRegistry:
		case inst.IsGlob():
			s.globs = append(s.globs, inst)
		case inst.RID.Host != "":
			s.byHost[inst.RID.Host] = append(s.byHost[inst.RID.Host], inst)
		}
	}
	for _, l := range s.byHost {
		slices.SortStableFunc(l, func(a, b *connectors.Instance) int { return cmp.Compare(len(b.RID.Path), len(a.RID.Path)) })
	}
	// Stable over the name order above, so equally specific globs go by name.
	slices.SortStableFunc(s.globs, func(a, b *connectors.Instance) int { return resourceid.ComparePatterns(a.Pattern, b.Pattern) })
	return s
}

func (s *connectorSet) match(rid resourceid.ID) *connectors.Instance {
	for _, inst := range s.byHost[rid.Host] {
		if inst.Covers(rid) {
			return inst
		}
	}
	for _, inst := range s.globs {
		if inst.Covers(rid) {
			return inst
		}
	}
	return nil
}

// request is the cache request for a get of rid from an expiring
// connector. Lookups go image, registry, global (the kubelet's order); a
// fetched credential is kept under the key its Scope names.
func (s *connectorSet) request(inst *connectors.Instance, rid resourceid.ID) refresh.Request {
	return refresh.Request{
		Source: s.sources[inst],
		Name:   inst.Name,
		Keys: []string{
			connectors.CacheKey(connectors.ScopeImage, rid),
			connectors.CacheKey(connectors.ScopeRegistry, rid),
			connectors.CacheKey(connectors.ScopeGlobal, rid),
		},
		FlightKey: connectors.CacheKey(inst.FetchScope(), rid),
		Fetch:     func(ctx context.Context) (connectors.Credentials, error) { return inst.Credentials(ctx, rid) },
		Store:     func(c connectors.Credentials) string { return connectors.CacheKey(c.Scope, rid) },
		Lifetime:  inst.Lifetime(),
		Skew:      inst.SkewTolerance,
	}
}

// servesRegistry returns a config connector for rid's registry, at any
// path: a stored credential for that host would silently shadow it or be
// shadowed by it, so store and erase refuse.
func (s *connectorSet) servesRegistry(rid resourceid.ID) *connectors.Instance {
	if l := s.byHost[rid.Host]; len(l) > 0 {
		return l[len(l)-1] // the broadest: name the registry-wide connector
	}
	for _, inst := range s.globs {
		if inst.Pattern.MatchRegistry(rid) {
			return inst
		}
	}
	return nil
}
