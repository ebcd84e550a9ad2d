//go:build secretservice && cgo && linux

package store

import "github.com/docker/docker-credential-helpers/secretservice"

// OpenSecretService returns the Secret Service (GNOME Keyring, KWallet)
// backend. This build links libsecret.
func OpenSecretService() (*Helper, error) {
	return NewHelper("secretservice", secretservice.Secretservice{}), nil
}
