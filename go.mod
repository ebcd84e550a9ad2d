module github.com/connectord/connectord

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/cenkalti/backoff/v5 v5.0.3
	github.com/docker/docker-credential-helpers v0.9.13
	github.com/fsnotify/fsnotify v1.10.1
	github.com/google/uuid v1.6.0
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
)

require github.com/google/go-containerregistry v0.22.1 // indirect
