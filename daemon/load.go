package daemon

import (
	"errors"
	"slices"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/connectors"
)

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Changed is false when the new config defines exactly the running
	// connectors: nothing was swapped.
	Changed bool
	// Added, Removed and Updated name the connectors that changed.
	Added, Removed, Updated []string
	// Files are the paths a watcher should cover: the config file and
	// every file a secret was read from.
	Files []string
}

// Reload reads the config file, validates the whole of it and only then
// swaps it in (caddy's order: build, validate, swap; never stop the old
// config first). A connector whose definition did not change keeps its
// running instance, and with it any cached credentials and refresh
// schedule. A missing file means no connectors. An invalid file leaves
// the running set untouched and returns the *config.Error listing every
// problem; status shows it.
func (d *Daemon) Reload(reg config.Instantiator, res connectors.Resolver) (ReloadResult, error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.set.Load().list
	res0 := ReloadResult{Files: append([]string{d.opts.ConfigPath}, secretFiles(old)...)}

	var next []*connectors.Instance
	f, err := config.Load(d.opts.ConfigPath)
	switch {
	case errors.Is(err, config.ErrNoConfig):
		err = nil
	case err == nil:
		next, err = f.Build(reg, res)
	}
	if err != nil {
		d.RecordLoadError(err)
		d.log.Error("config rejected; still serving the previous one", "config", d.opts.ConfigPath, "err", err)
		return res0, err
	}

	byName := map[string]*connectors.Instance{}
	for _, inst := range old {
		byName[inst.Name] = inst
	}
	out := ReloadResult{Files: append([]string{d.opts.ConfigPath}, secretFiles(next)...)}
	for i, inst := range next {
		prev, ok := byName[inst.Name]
		switch {
		case !ok:
			out.Added = append(out.Added, inst.Name)
		case prev.SameDefinition(inst):
			next[i] = prev
		default:
			out.Updated = append(out.Updated, inst.Name)
		}
		delete(byName, inst.Name)
	}
	for name := range byName {
		out.Removed = append(out.Removed, name)
	}
	slices.Sort(out.Removed)
	out.Changed = len(out.Added)+len(out.Removed)+len(out.Updated) > 0
	// Unchanged connectors are the running pointers, so swapping in an
	// equivalent set is harmless and records the load for status.
	d.SetConnectors(next)
	if out.Changed {
		d.log.Info("config reloaded", "config", d.opts.ConfigPath, "connectors", len(next),
			"added", out.Added, "updated", out.Updated, "removed", out.Removed)
	}
	return out, nil
}

func secretFiles(list []*connectors.Instance) []string {
	var out []string
	for _, inst := range list {
		out = append(out, inst.Config.Files()...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
