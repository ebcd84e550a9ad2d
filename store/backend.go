package store

import (
	"fmt"
	"os/exec"

	"github.com/docker/docker-credential-helpers/pass"
)

// Backends names the store backends the config may choose.
var Backends = []string{"file", "pass", "secretservice"}

// OpenPass returns the pass backend, checking first that `pass` is
// installed and initialised so the daemon fails at start, not at the
// first docker login.
func OpenPass() (*Helper, error) {
	if _, err := exec.LookPath("pass"); err != nil {
		return nil, fmt.Errorf("%w: pass: the `pass` program is not on PATH (apt-get install pass)", ErrBackendUnavailable)
	}
	p := pass.Pass{}
	if !p.CheckInitialized() {
		return nil, fmt.Errorf("%w: pass: the password store is not initialised (run `pass init GPG-ID`)", ErrBackendUnavailable)
	}
	return NewHelper("pass", p), nil
}
