package cli

// configure-docker and import: ZenML's configure_local_client and
// auto_configure for docker. Both edit the user's docker config.json
// through internal/dockercfg, which keeps every field it does not own,
// the file's mode, and a backup; a run that changes nothing writes
// nothing, so running either twice is safe.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/connectord/connectord/connectors"
	"github.com/connectord/connectord/internal/dockercfg"
	"github.com/connectord/connectord/ipc"
	"github.com/connectord/connectord/ipc/client"
	"github.com/connectord/connectord/resourceid"
)

const (
	// helperName is what docker's config names our helper by: docker
	// runs "docker-credential-" + helperName.
	helperName   = "connector"
	helperBinary = "docker-credential-" + helperName
)

// dockerChange is one edit to the docker config.
type dockerChange struct {
	Field string `json:"field"`         // credsStore, credHelpers or auths
	Key   string `json:"key,omitempty"` // the credHelpers or auths key
	Old   string `json:"old,omitempty"` // the previous helper; for auths, what was removed
	New   string `json:"new,omitempty"`
}

// dockerReport is what configure-docker prints (and import, inside its own).
type dockerReport struct {
	ConfigFile string         `json:"config_file"`
	DryRun     bool           `json:"dry_run"`
	Changed    bool           `json:"changed"`
	Backup     string         `json:"backup,omitempty"`
	Changes    []dockerChange `json:"changes"`
	Warnings   []string       `json:"warnings,omitempty"`
}

// movedCred is a credential import moved into the store; never its secret.
type movedCred struct {
	Registry string `json:"registry"`  // connectord's key for it
	AuthsKey string `json:"auths_key"` // the key in config.json
	Username string `json:"username"`
}

// skippedCred is an auths entry import left in place, and why.
type skippedCred struct {
	Registry string `json:"registry"` // the key in config.json
	Reason   string `json:"reason"`
}

type importReport struct {
	dockerReport
	Moved   []movedCred   `json:"moved"`
	Skipped []skippedCred `json:"skipped"`
}

// registryList is a repeatable --registry flag.
type registryList []resourceid.ID

func (r *registryList) String() string { return "" }

func (r *registryList) Set(s string) error {
	id, err := resourceid.Parse(s)
	if err != nil {
		return err
	}
	*r = append(*r, id)
	return nil
}

func runConfigureDocker(e *env, args []string) int {
	fs := e.flagSet("configure-docker", "[flags]", `Point docker's config.json at docker-credential-connector: set "credsStore"
to "connector" (docker, crane, oras, regctl) and add a "credHelpers" entry
for every registry connectord serves and every --registry (skopeo and
podman read only credHelpers). Every other field is kept, and so are
credHelpers entries for other registries. The old file is kept as
config.json.bak-<UTC time>; a run that changes nothing writes nothing.

Docker Hub gets two credHelpers keys: "https://index.docker.io/v1/"
(docker, crane) and "docker.io" (skopeo, podman).`)
	var regs registryList
	fs.Var(&regs, "registry", "also send registry `R` (host[:port]) to the helper; repeatable")
	df := e.dockerFlags(fs, "edit", "print what would change; write nothing")
	path, f, socket, code, ok := df.load(e, args)
	if !ok {
		return code
	}
	dryRun, asJSON := df.dryRun, df.asJSON
	rep := dockerReport{ConfigFile: path, DryRun: *dryRun}

	served, warnings, err := e.servedRegistries(socket)
	switch {
	case client.IsNotRunning(err):
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("connectord is not running (%v): only credsStore and the --registry entries were considered; run configure-docker again once it runs so that skopeo and podman reach its registries", err))
	case err != nil:
		return e.fail("asking the daemon which registries it serves: %v", err)
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	rep.Changes, rep.Warnings = configureHelpers(f, append(served, regs...), rep.Warnings)

	if rep.Backup, err = saveDocker(f, *dryRun); err != nil {
		return e.fail("%v", err)
	}
	rep.Changed = len(rep.Changes) > 0
	if *asJSON {
		if rep.Changes == nil {
			rep.Changes = []dockerChange{}
		}
		e.printWarnings(rep.Warnings)
		return e.printJSON(rep)
	}
	e.printDockerReport(&rep)
	return exitOK
}

func runImport(e *env, args []string) int {
	fs := e.flagSet("import", "[flags]", `Move the plaintext credentials in docker's config.json ("auths" entries with
"auth", "username"/"password" or "identitytoken") into connectord's store,
then point the file at docker-credential-connector as configure-docker does.
Each moved entry stays in "auths" as {}, as docker leaves it under a
credsStore, so that docker still lists the registry. Registries that a
connector in connectord's config serves are skipped (the daemon refuses
to store credentials for them) and left as they are. Secrets are never
printed. The old file is kept as config.json.bak-<UTC time>: it still
holds the plaintext credentials, so delete it once you are satisfied.`)
	df := e.dockerFlags(fs, "import from", "print what would move and change; store and write nothing")
	path, f, socket, code, ok := df.load(e, args)
	if !ok {
		return code
	}
	dryRun, asJSON := df.dryRun, df.asJSON
	var infos []connectors.Info
	if err := e.call(socket, &ipc.Request{Op: ipc.OpConnectors}, &infos); err != nil {
		if client.IsNotRunning(err) {
			return e.fail("import stores credentials through the daemon, which is not running: %v (start it with `connectord start`)", err)
		}
		return e.fail("%v", err)
	}

	rep := importReport{dockerReport: dockerReport{ConfigFile: path, DryRun: *dryRun}, Moved: []movedCred{}, Skipped: []skippedCred{}}
	failed := e.moveCredentials(f, socket, infos, *dryRun, &rep)

	served, warnings, err := e.servedRegistries(socket)
	if err != nil {
		return e.fail("asking the daemon which registries it serves: %v", err)
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	for _, m := range rep.Moved { // in a dry run the daemon does not know them yet
		if id, err := resourceid.Parse(m.Registry); err == nil {
			served = append(served, id)
		}
	}
	var changes []dockerChange
	changes, rep.Warnings = configureHelpers(f, served, rep.Warnings)
	rep.Changes = append(rep.Changes, changes...)

	if rep.Backup, err = saveDocker(f, *dryRun); err != nil {
		// The moved credentials are in the store and still in the file:
		// nothing is lost, and a second run finishes the job.
		return e.fail("%v", err)
	}
	if rep.Backup != "" && len(rep.Moved) > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the backup %s still holds the plaintext credentials; delete it once you have checked the result", rep.Backup))
	}
	rep.Changed = len(rep.Changes) > 0
	if *asJSON {
		if rep.Changes == nil {
			rep.Changes = []dockerChange{}
		}
		e.printWarnings(rep.Warnings)
		if code := e.printJSON(rep); code != exitOK {
			return code
		}
	} else {
		e.printImportReport(&rep)
	}
	if failed {
		return e.fail("some credentials could not be moved; they are still in %s", path)
	}
	return exitOK
}

// moveCredentials stores each plaintext credential of f through the
// daemon and removes it from f, recording what moved and what was
// skipped in rep. A registry served by a config connector is skipped;
// that is an answer, not a failure. failed reports a real failure
// (the daemon could not store a credential).
//
// Storing comes first and removing second: if anything breaks in
// between, the credential is in both places, never in neither.
func (e *env) moveCredentials(f *dockercfg.File, socket string, infos []connectors.Info, dryRun bool, rep *importReport) (failed bool) {
	// Which hosts config connectors serve, to predict the daemon's
	// refusal in a dry run.
	configured := map[string]string{}
	for _, in := range infos {
		if in.Origin == "store" || in.ResourceType != connectors.ResourceTypeDockerRegistry {
			continue
		}
		if id, err := resourceid.Parse(in.ResourceID); err == nil {
			configured[id.Host] = in.Name
		}
	}
	done := map[string]dockercfg.Credential{} // registry key -> what this run stored there
	skip := func(key, reason string) {
		rep.Skipped = append(rep.Skipped, skippedCred{Registry: key, Reason: reason})
	}
	for _, p := range f.Plaintext() {
		if p.Err != nil {
			skip(p.Key, p.Err.Error())
			continue
		}
		id, err := resourceid.Parse(p.Key)
		if err != nil {
			skip(p.Key, fmt.Sprintf("not a registry connectord can key: %v", err))
			continue
		}
		if id.Path != "" {
			// containers' auth.json allows per-repository entries; docker's
			// helper protocol keys by registry, so storing one would widen
			// it to the whole registry.
			skip(p.Key, "a repository-scoped credential; credential helpers are keyed by registry, so it stays in the file")
			continue
		}
		key := id.Key()
		if prev, ok := done[key]; ok {
			if prev.Username == p.Cred.Username && prev.Secret.Reveal() == p.Cred.Secret.Reveal() {
				// Another spelling of a registry already moved, with the
				// same credential ("docker.io" and the index URL).
				f.TakeCredential(p.Key)
				rep.Changes = append(rep.Changes, dockerChange{Field: "auths", Key: p.Key, Old: "credential", New: "{}"})
				continue
			}
			skip(p.Key, fmt.Sprintf("another auths entry for %s, with a different credential, was moved first", key))
			continue
		}
		if name, ok := configured[id.Host]; ok && dryRun {
			skip(p.Key, fmt.Sprintf("%s is served by connector %q from the config; its credentials come from there", key, name))
			continue
		}
		if !dryRun {
			err := e.call(socket, &ipc.Request{Op: ipc.OpStore, ServerURL: p.Key, Username: p.Cred.Username, Secret: p.Cred.Secret.Reveal()}, nil)
			switch {
			case errors.Is(err, ipc.ErrConflict):
				skip(p.Key, err.Error())
				continue
			case err != nil:
				skip(p.Key, fmt.Sprintf("storing it failed: %v", err))
				failed = true
				continue
			}
		}
		done[key] = p.Cred
		f.TakeCredential(p.Key)
		rep.Moved = append(rep.Moved, movedCred{Registry: key, AuthsKey: p.Key, Username: p.Cred.Username})
		rep.Changes = append(rep.Changes, dockerChange{Field: "auths", Key: p.Key, Old: "credential", New: "{}"})
	}
	return failed
}

// configureHelpers sets credsStore and a credHelpers entry for each of
// ids, returning the changes and warnings (appended to warnings).
func configureHelpers(f *dockercfg.File, ids []resourceid.ID, warnings []string) ([]dockerChange, []string) {
	var changes []dockerChange
	if old, changed := f.SetCredsStore(helperName); changed {
		changes = append(changes, dockerChange{Field: "credsStore", Old: old, New: helperName})
		if old != "" {
			warnings = append(warnings, fmt.Sprintf("credsStore was %q: credentials stored in docker-credential-%s are no longer used; log in again (connectord login, or docker login) for the registries that need them", old, old))
		}
	}
	keys := map[string]bool{}
	for _, id := range ids {
		for _, k := range dockercfg.HelperKeys(id) {
			keys[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if old, changed := f.SetCredHelper(k, helperName); changed {
			changes = append(changes, dockerChange{Field: "credHelpers", Key: k, Old: old, New: helperName})
		}
	}
	return changes, warnings
}

// servedRegistries asks the daemon which registries it serves: the keys
// of its list (connectors and stored credentials) and the resource ids
// of its connectors. Patterns ("*.example.com") cannot be credHelpers
// keys; they come back as warnings.
func (e *env) servedRegistries(socket string) ([]resourceid.ID, []string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := client.New(socket).Do(ctx, &ipc.Request{Op: ipc.OpList})
	if err != nil {
		return nil, nil, err
	}
	var infos []connectors.Info
	if err := e.call(socket, &ipc.Request{Op: ipc.OpConnectors}, &infos); err != nil {
		return nil, nil, err
	}
	var ids []resourceid.ID
	var warnings []string
	add := func(raw, name string) {
		id, err := resourceid.Parse(raw)
		if err != nil {
			if _, perr := resourceid.ParsePattern(raw); perr == nil {
				warnings = append(warnings, fmt.Sprintf("connector %q serves the pattern %s; credHelpers has no wildcards, so name each registry with --registry for skopeo and podman", name, raw))
			}
			return
		}
		ids = append(ids, id.Registry())
	}
	for _, k := range slices.Sorted(maps.Keys(resp.Registries)) {
		add(k, k)
	}
	for _, in := range infos {
		if in.ResourceType == connectors.ResourceTypeDockerRegistry && in.ResourceID != "" {
			add(in.ResourceID, in.Name)
		}
	}
	return ids, slices.Compact(slices.Sorted(slices.Values(warnings))), nil
}

// requireHelper refuses to point docker at a helper it cannot run: with
// credsStore naming a missing program, every docker pull and push fails.
func (e *env) requireHelper() (int, bool) {
	for _, dir := range filepath.SplitList(e.getenv("PATH")) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry depends on the directory docker runs in
		}
		if _, err := exec.LookPath(filepath.Join(dir, helperBinary)); err == nil {
			return exitOK, true
		}
	}
	return e.fail("%s is not on PATH, so docker could not run it: not changing the docker config. Install it next to connectord (`make install` puts both in ~/.local/bin) and make sure that directory is on PATH.", helperBinary), false
}

func (e *env) dockerConfigPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return dockercfg.Path(e.getenv)
}

// saveDocker writes f unless this is a dry run or nothing changed, and
// returns the backup it made.
func saveDocker(f *dockercfg.File, dryRun bool) (string, error) {
	if dryRun || !f.Changed() {
		return "", nil
	}
	return f.Save(time.Now())
}

func (e *env) printWarnings(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "connectord: warning: %s\n", w)
	}
}

func (e *env) printDockerReport(rep *dockerReport) {
	e.printWarnings(rep.Warnings)
	w := e.stdout
	switch {
	case len(rep.Changes) == 0:
		fmt.Fprintf(w, "%s: no changes; docker already uses %s for every registry connectord serves\n", rep.ConfigFile, helperBinary)
		return
	case rep.DryRun:
		fmt.Fprintf(w, "%s: would change (dry run, nothing written):\n", rep.ConfigFile)
	default:
		fmt.Fprintf(w, "%s: changed:\n", rep.ConfigFile)
	}
	printChanges(w, rep.Changes)
	if rep.Backup != "" {
		fmt.Fprintf(w, "backup of the previous file: %s\n", rep.Backup)
	}
}

func (e *env) printImportReport(rep *importReport) {
	w := e.stdout
	verb := "moved"
	if rep.DryRun {
		verb = "would move"
	}
	for _, m := range rep.Moved {
		fmt.Fprintf(w, "%s %s (user %s) into connectord's store\n", verb, m.AuthsKey, m.Username)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", s.Registry, s.Reason)
	}
	if len(rep.Moved)+len(rep.Skipped) == 0 {
		fmt.Fprintf(w, "%s holds no plaintext credentials\n", rep.ConfigFile)
	}
	e.printDockerReport(&rep.dockerReport)
}

func printChanges(w io.Writer, changes []dockerChange) {
	for _, c := range changes {
		switch c.Field {
		case "credsStore":
			fmt.Fprintf(w, "  credsStore: %q%s\n", c.New, was(c.Old))
		case "credHelpers":
			fmt.Fprintf(w, "  credHelpers[%q]: %q%s\n", c.Key, c.New, was(c.Old))
		case "auths":
			fmt.Fprintf(w, "  auths[%q]: credential removed (moved to connectord)\n", c.Key)
		}
	}
}

func was(old string) string {
	if old == "" {
		return " (new)"
	}
	return fmt.Sprintf(" (was %q)", old)
}

var _ flag.Value = (*registryList)(nil)

// dockerCmdFlags are the flags configure-docker and import share.
type dockerCmdFlags struct {
	fs                     *flag.FlagSet
	cfgFile                *string
	dryRun, asJSON         *bool
	socketFlag, configFlag *string
}

func (e *env) dockerFlags(fs *flag.FlagSet, verb, dryRunHelp string) dockerCmdFlags {
	return dockerCmdFlags{
		fs:         fs,
		cfgFile:    fs.String("config-file", "", "docker config `PATH` to "+verb+" (default $DOCKER_CONFIG/config.json, else ~/.docker/config.json)"),
		dryRun:     fs.Bool("dry-run", false, dryRunHelp),
		asJSON:     fs.Bool("json", false, "print JSON"),
		socketFlag: fs.String("socket", "", "socket path"),
		configFlag: fs.String("config", "", "connectord config file (for its [daemon] socket)"),
	}
}

// load parses the flags, checks the helper is installed and loads the
// docker config; ok is false when the command must stop with code.
func (df dockerCmdFlags) load(e *env, args []string) (path string, f *dockercfg.File, socket string, code int, ok bool) {
	if code, ok := e.parse(df.fs, args, 0); !ok {
		return "", nil, "", code, false
	}
	if code, ok := e.requireHelper(); !ok {
		return "", nil, "", code, false
	}
	path, err := e.dockerConfigPath(*df.cfgFile)
	if err != nil {
		return "", nil, "", e.fail("%v", err), false
	}
	if f, err = dockercfg.Load(path); err != nil {
		return "", nil, "", e.fail("%v; the file was left as it is", err), false
	}
	return path, f, e.socketPath(*df.socketFlag, *df.configFlag), exitOK, true
}
