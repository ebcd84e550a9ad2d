// Package all links every built-in connector type into a binary; the
// daemon imports it for the side effect of their init registrations.
package all

import (
	// Each import registers one connector type with registry.Default.
	_ "github.com/connectord/connectord/connectors/docker"
	_ "github.com/connectord/connectord/connectors/exec"
)
