// Command credfixed is the step between bench/floor and the real helper in
// bench/helpers.sh's profile: docker-credential-helpers' credentials.Serve,
// called exactly as cmd/docker-credential-connector calls it, with a Helper
// that answers a fixed credential instead of asking the daemon. What it
// costs over the floor is the credentials package and what it links (fmt,
// encoding/json, flag, ...); what the helper costs over it is ipc/client,
// net and the round trip to the daemon.
package main

import (
	"errors"

	"github.com/docker/docker-credential-helpers/credentials"
)

type fixed struct{}

var errReadOnly = errors.New("credfixed answers get only")

func (fixed) Add(*credentials.Credentials) error { return errReadOnly }
func (fixed) Delete(string) error                { return errReadOnly }
func (fixed) Get(string) (string, string, error) { return "labuser", "labpass", nil }
func (fixed) List() (map[string]string, error)   { return map[string]string{}, nil }

func main() {
	credentials.Name = "docker-credential-credfixed"
	credentials.Serve(fixed{})
}
