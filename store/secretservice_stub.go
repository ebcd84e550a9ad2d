//go:build !(secretservice && cgo && linux)

package store

import "fmt"

// OpenSecretService reports that this build has no Secret Service
// support: it needs cgo and libsecret at build time (`make build` adds
// the secretservice tag when pkg-config finds libsecret-1).
func OpenSecretService() (*Helper, error) {
	return nil, fmt.Errorf("%w: secretservice: this connectord was built without libsecret (install libsecret-1-dev and rebuild)", ErrBackendUnavailable)
}
