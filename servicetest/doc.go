// Package servicetest tests connectord as a service people run, end to
// end with the real binaries: configure-docker and import on real docker
// config files followed by real pulls with crane and skopeo; the systemd
// user units under `systemd-analyze verify`; socket activation and the
// notify protocol, driven the way systemd drives them. It holds tests
// only.
package servicetest
