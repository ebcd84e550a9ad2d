package ipc_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/connectord/connectord/ipc"
)

func TestSocketPath(t *testing.T) {
	t.Parallel()
	tmp := "/tmp/connectord-" + strconv.Itoa(os.Getuid()) + "/connectord.sock"
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"override wins", map[string]string{"CONNECTORD_SOCKET": "/srv/cd.sock", "XDG_RUNTIME_DIR": "/run/user/1000"}, "/srv/cd.sock"},
		{"override verbatim", map[string]string{"CONNECTORD_SOCKET": "rel/cd.sock"}, "rel/cd.sock"},
		{"runtime dir", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, "/run/user/1000/connectord/connectord.sock"},
		{"runtime dir cleaned", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000/"}, "/run/user/1000/connectord/connectord.sock"},
		{"relative runtime dir ignored", map[string]string{"XDG_RUNTIME_DIR": "run/user"}, tmp},
		{"empty values are unset", map[string]string{"CONNECTORD_SOCKET": "", "XDG_RUNTIME_DIR": ""}, tmp},
		{"cron or sudo", map[string]string{"TMPDIR": "/var/tmp"}, tmp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ipc.SocketPath(func(k string) string { return tt.env[k] }); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// Not parallel: t.Setenv.
func TestSocketPathNilGetenv(t *testing.T) {
	t.Setenv("CONNECTORD_SOCKET", "/from/the/environment.sock")
	if got := ipc.SocketPath(nil); got != "/from/the/environment.sock" {
		t.Fatalf("got %q", got)
	}
}
