//go:build linux

// Command rawsocket is a measurement, not a product: the helper's get with
// the transport swapped for blocking system calls, to size one proposal for
// closing the helper's gap to the floor (see BENCHMARKS.md). It calls
// credentials.Serve as cmd/docker-credential-connector does and speaks the
// same ipc messages (ipc.EncodeRequest, ipc.DecodeResponse), but instead of
// package net it opens the Unix socket with syscall, leaves it blocking,
// bounds it with SO_SNDTIMEO/SO_RCVTIMEO, and reads through os.NewFile,
// which does not use the runtime's network poller for a blocking fd. No
// netpoller (epoll, eventfd), no parked goroutine to wake, and package net
// is not linked. It has no autostart and answers get only.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"syscall"

	"github.com/docker/docker-credential-helpers/credentials"

	"github.com/connectord/connectord/ipc"
)

type raw struct{ path string }

var errReadOnly = errors.New("rawsocket answers get only")

func (raw) Add(*credentials.Credentials) error { return errReadOnly }
func (raw) Delete(string) error                { return errReadOnly }
func (raw) List() (map[string]string, error)   { return nil, errReadOnly }

func (h raw) Get(serverURL string) (string, string, error) {
	var msg bytes.Buffer
	if err := ipc.EncodeRequest(&msg, &ipc.Request{V: ipc.Version, Op: ipc.OpGet, ServerURL: serverURL}); err != nil {
		return "", "", err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", "", err
	}
	f := os.NewFile(uintptr(fd), h.path) // blocking fd: plain read/write, no poller
	defer f.Close()
	tv := syscall.Timeval{Sec: 30}
	for _, opt := range []int{syscall.SO_SNDTIMEO, syscall.SO_RCVTIMEO} {
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
			return "", "", err
		}
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: h.path}); err != nil {
		return "", "", err
	}
	if _, err := f.Write(msg.Bytes()); err != nil {
		return "", "", err
	}
	resp, err := ipc.DecodeResponse(bufio.NewReader(f))
	if err != nil {
		return "", "", err
	}
	if resp.Error != nil {
		if resp.Error.Code == ipc.CodeNotFound {
			return "", "", credentials.NewErrCredentialsNotFound()
		}
		return "", "", resp.Error
	}
	return resp.Username, resp.Secret, nil
}

func main() {
	credentials.Name = "docker-credential-rawsocket"
	credentials.Serve(raw{path: ipc.SocketPath(nil)})
}
