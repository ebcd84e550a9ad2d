package server

import (
	"strings"
	"testing"
)

func TestLogURL(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 300)
	tests := []struct{ in, want string }{
		{"", ""},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"https://index.docker.io/v1/", "https://index.docker.io/v1/"},
		{"https://user:pass@reg.example/v2/", "https://[REDACTED]@reg.example/v2/"},
		{"user:pass@reg.example", "[REDACTED]@reg.example"},
		{"a:b@c@reg.example/x", "[REDACTED]@reg.example/x"},
		{"reg.example/team@sha256:abc", "reg.example/team@sha256:abc"},
		{"reg.example?q=a@b", "reg.example?q=a@b"},
		{long, strings.Repeat("é", 128) + "…"},
	}
	for _, tt := range tests {
		if got := logURL(tt.in); got != tt.want {
			t.Errorf("logURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
