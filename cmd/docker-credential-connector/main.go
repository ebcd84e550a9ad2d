// Command docker-credential-connector is a docker credential helper that
// asks the connectord daemon for every answer. Put "credsStore":
// "connector" in ~/.docker/config.json to use it.
package main

import (
	"os"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/credhelper"
	"github.com/connectord/connectord/internal/version"
)

func main() {
	credentials.Name = "docker-credential-connector"
	credentials.Package = "github.com/connectord/connectord"
	credentials.Version = version.Version
	credentials.Serve(credhelper.New(os.Getenv))
}
