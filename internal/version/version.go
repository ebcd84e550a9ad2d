// Package version carries the build's version, stamped by the Makefile
// with -ldflags -X so both binaries report the same one.
package version

// Version is overwritten at link time.
var Version = "dev"
