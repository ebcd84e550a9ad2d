// Command connectord is the credential daemon and its command line.
package main

import (
	"context"
	"os"

	"github.com/connectord/connectord/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
