//go:build !linux

package e2e

import (
	"errors"
	"os/exec"
)

func setDeathSignal(*exec.Cmd) {}

func holdFlock(string) (func(), error) { return nil, errors.New("flock: only on linux") }
