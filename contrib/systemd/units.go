// Package systemd holds connectord's systemd user units: the files in
// this directory, embedded so that `connectord install-service` writes
// exactly what is reviewed and tested here. (The daemon side of the
// systemd protocols is internal/systemd.)
package systemd

import "embed"

// Unit file names, as installed; SandboxDropIn is relative to the unit
// directory.
const (
	Service       = "connectord.service"
	Socket        = "connectord.socket"
	SandboxDropIn = "connectord.service.d/sandbox.conf"
)

// DefaultExecStart is the ExecStart line of Service as shipped;
// install-service replaces it with the binary it runs from.
const DefaultExecStart = "ExecStart=%h/.local/bin/connectord serve"

//go:embed connectord.service connectord.socket connectord.service.d/sandbox.conf
var files embed.FS

// File returns the shipped content of a unit file (Service, Socket or
// SandboxDropIn).
func File(name string) ([]byte, error) { return files.ReadFile(name) }
