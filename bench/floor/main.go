// Command floor is the lower bound for a docker credential helper's
// whole-process `get`: a Go program that reads the request from stdin, as
// every helper must, and prints a fixed credential. It imports only os, so
// what it costs is the Go runtime starting and stopping and nothing else.
//
// bench/helpers.sh builds it with the helper's own flags (CGO_ENABLED=0,
// -trimpath -ldflags '-s -w') and times it beside docker-credential-connector.
package main

import "os"

const answer = `{"ServerURL":"127.0.0.1:5000","Username":"labuser","Secret":"labpass"}` + "\n"

func main() {
	// Drain the server URL docker writes; its content does not matter.
	var buf [512]byte
	for {
		n, err := os.Stdin.Read(buf[:])
		if n == 0 || err != nil {
			break
		}
	}
	if _, err := os.Stdout.WriteString(answer); err != nil {
		os.Exit(1)
	}
}
