package cli

import (
	"errors"
	"log/slog"

	"github.com/connectord/connectord/config"
	"github.com/connectord/connectord/daemon"
	"github.com/connectord/connectord/store"
)

// openStore opens the stored-credentials backend the config chooses.
func openStore(path string, f *config.File, log *slog.Logger) (daemon.Store, error) {
	backend := "file"
	if f != nil && f.Daemon.StoreBackend != "" {
		backend = f.Daemon.StoreBackend
	}
	switch backend {
	case "pass":
		return store.OpenPass()
	case "secretservice":
		return store.OpenSecretService()
	}
	st, err := store.Open(path)
	var corrupt *store.CorruptError
	if errors.As(err, &corrupt) {
		// Keep serving the config's connectors; the bad file was kept
		// aside for the user to inspect.
		log.Error("credential store was corrupt; moved it aside and started empty", "store", corrupt.Path, "backup", corrupt.Backup, "err", corrupt.Err)
		return st, nil
	}
	return st, err
}
