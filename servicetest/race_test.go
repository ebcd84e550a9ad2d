//go:build race

package servicetest

// raceEnabled: this test binary runs under the race detector, so the
// binaries under test are built with it too (a race makes them exit 66).
const raceEnabled = true
