package resourceid_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/connectord/connectord/resourceid"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	const digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cases := []struct {
		name string
		in   string
		host string
		path string
		key  string
	}{
		// Docker Hub: every alias, with or without scheme and API path, is one registry under docker's key.
		{"hub docker.io", "docker.io", "docker.io", "", resourceid.DockerHubKey},
		{"hub index", "index.docker.io", "docker.io", "", resourceid.DockerHubKey},
		{"hub key without scheme", "index.docker.io/v1/", "docker.io", "", resourceid.DockerHubKey},
		{"hub v2 path without scheme", "registry-1.docker.io/v2", "docker.io", "", resourceid.DockerHubKey},
		{"hub registry-1", "registry-1.docker.io", "docker.io", "", resourceid.DockerHubKey},
		{"hub registry.hub", "registry.hub.docker.com", "docker.io", "", resourceid.DockerHubKey},
		{"hub docker key", "https://index.docker.io/v1/", "docker.io", "", resourceid.DockerHubKey},
		{"hub v2 endpoint", "https://registry-1.docker.io/v2/", "docker.io", "", resourceid.DockerHubKey},
		{"hub upper case", "HTTPS://Index.Docker.IO/V1/", "docker.io", "", resourceid.DockerHubKey},
		{"hub bare upper", "DOCKER.IO", "docker.io", "", resourceid.DockerHubKey},
		{"hub official image", "docker.io/alpine", "docker.io", "library/alpine", resourceid.DockerHubKey},
		{"hub official image tag", "index.docker.io/Alpine:3.20", "docker.io", "library/alpine", resourceid.DockerHubKey},
		{"hub library explicit", "docker.io/library/alpine", "docker.io", "library/alpine", resourceid.DockerHubKey},
		{"hub user repo", "registry-1.docker.io/someuser/app", "docker.io", "someuser/app", resourceid.DockerHubKey},
		{"hub namespace with slash", "docker.io/someuser/", "docker.io", "library/someuser", resourceid.DockerHubKey},
		{"hub path dropped with scheme", "https://docker.io/library/alpine", "docker.io", "", resourceid.DockerHubKey},
		{"hub with port is not hub", "docker.io:443", "docker.io:443", "", "docker.io:443"},
		{"hub website is not hub", "hub.docker.com", "hub.docker.com", "", "hub.docker.com"},

		// Hosts and ports.
		{"loopback port", "127.0.0.1:5000", "127.0.0.1:5000", "", "127.0.0.1:5000"},
		{"localhost", "localhost", "localhost", "", "localhost"},
		{"port kept", "Registry.Example.COM:443", "registry.example.com:443", "", "registry.example.com:443"},
		{"max port", "host:65535", "host:65535", "", "host:65535"},
		{"min port", "host:1", "host:1", "", "host:1"},
		{"underscore and hyphen", "my_reg-1.internal", "my_reg-1.internal", "", "my_reg-1.internal"},
		{"surrounding whitespace", " \t127.0.0.1:5000\n", "127.0.0.1:5000", "", "127.0.0.1:5000"},

		// Schemes: stripped, and whatever follows the host is an API path.
		{"http", "http://host:5000", "host:5000", "", "host:5000"},
		{"https v2", "https://host:5000/v2/", "host:5000", "", "host:5000"},
		{"scheme upper", "HTTP://HOST:5000", "host:5000", "", "host:5000"},
		{"scheme path dropped", "https://ghcr.io/team/app", "ghcr.io", "", "ghcr.io"},
		{"scheme trailing slash", "https://quay.io/", "quay.io", "", "quay.io"},

		// Repository paths without a scheme.
		{"path", "HOST:5000/team/app", "host:5000", "team/app", "host:5000"},
		{"path single", "ghcr.io/app", "ghcr.io", "app", "ghcr.io"},
		{"path deep", "reg.example.com/a/b/c/d", "reg.example.com", "a/b/c/d", "reg.example.com"},
		{"path trailing slash", "host/team/app/", "host", "team/app", "host"},
		{"path only slash", "host:5000/", "host:5000", "", "host:5000"},
		{"path separators", "host/a.b/c_d/e-f/g__h", "host", "a.b/c_d/e-f/g__h", "host"},
		{"tag stripped", "host:5000/team/app:v1.2-rc_3", "host:5000", "team/app", "host:5000"},
		{"digest stripped", "host/team/app@" + digest, "host", "team/app", "host"},
		{"tag and digest stripped", "host/team/app:v1@" + digest, "host", "team/app", "host"},
		{"tag before trailing slash", "host/app:v1/", "host", "app", "host"},
		{"path upper", "Host/Team/App", "host", "team/app", "host"},

		// IPv6 literals: bracketed, rewritten in their RFC 5952 form.
		{"ipv6 port", "[::1]:5000", "[::1]:5000", "", "[::1]:5000"},
		{"ipv6 upper", "[FE80::1]", "[fe80::1]", "", "[fe80::1]"},
		{"ipv6 scheme", "https://[::1]:5000/v2/", "[::1]:5000", "", "[::1]:5000"},
		{"ipv6 long form", "[0:0:0:0:0:0:0:1]:5000", "[::1]:5000", "", "[::1]:5000"},
		{"ipv6 path", "[2001:db8::5]:443/team/app:v1", "[2001:db8::5]:443", "team/app", "[2001:db8::5]:443"},
		{"ipv4 mapped", "[::ffff:7f00:1]", "[::ffff:127.0.0.1]", "", "[::ffff:127.0.0.1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := resourceid.Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			want := resourceid.ID{Host: tc.host, Path: tc.path}
			if id != want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, id, want)
			}
			if got := id.Key(); got != tc.key {
				t.Errorf("Parse(%q).Key() = %q, want %q", tc.in, got, tc.key)
			}
			if got := id.IsDockerHub(); got != (tc.key == resourceid.DockerHubKey) {
				t.Errorf("Parse(%q).IsDockerHub() = %v", tc.in, got)
			}
			again, err := resourceid.Parse(id.String())
			if err != nil || again != id {
				t.Errorf("Parse(%q) = %+v, %v; want %+v", id.String(), again, err, id)
			}
			reg, err := resourceid.Parse(id.Key())
			if err != nil || reg != id.Registry() {
				t.Errorf("Parse(Key %q) = %+v, %v; want %+v", id.Key(), reg, err, id.Registry())
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want string // a fragment of the message that says what is wrong
	}{
		{"empty", "", "empty"},
		{"blank", " \t\n ", "empty"},
		{"too long", "host/" + strings.Repeat("a", 2044), "longer than 2048"},
		{"canonical too long", "docker.io/" + strings.Repeat("a", 2035), "canonical form"},
		{"inner space", "host /app", "whitespace"},
		{"inner tab", "host\t:5000", "whitespace"},
		{"inner newline", "host\nother", "whitespace"},
		{"nbsp", "host\u00a0x", "whitespace"},
		{"nul", "host\x00", "control"},
		{"escape", "host\x1b[31m", "control"},
		{"del", "host\x7f", "control"},
		{"invalid utf8", "host/\xff", "UTF-8"},
		{"query", "https://host/v2/?x=1", "query or fragment"},
		{"fragment", "host/app#frag", "query or fragment"},
		{"ftp scheme", "ftp://host", "unsupported scheme"},
		{"oci scheme", "oci://host/app", "unsupported scheme"},
		{"docker scheme", "docker://host:5000", "unsupported scheme"},
		{"scheme only", "https://", "no registry host"},
		{"scheme empty host", "https:///v2/", "no registry host"},
		{"userinfo", "user@host", "userinfo"},
		{"userinfo scheme", "https://user:pass@host/v2/", "userinfo"},
		{"userinfo path", "user@host/app", "userinfo"},
		{"bare digest", "alpine@sha256:abc", "userinfo"},
		{"leading slash", "/team/app", "no registry host"},
		{"port only", ":5000", "no registry host"},
		{"empty port", "host:", "empty port"},
		{"port zero", "host:0", "out of range"},
		{"port too big", "host:65536", "out of range"},
		{"port huge", "host:99999999999999999999", "out of range"},
		{"port leading zero", "host:05000", "leading zero"},
		{"port plus", "host:+5000", "not a decimal"},
		{"port minus", "host:-1", "not a decimal"},
		{"port name", "host:http", "not a decimal"},
		{"port hex", "host:0x50", "not a decimal"},
		{"image with tag", "alpine:latest", "not a decimal"},
		{"two ports", "host:5000:6000", "more than one colon"},
		{"unbracketed ipv6", "::1", "in brackets"},
		{"unbracketed ipv6 port", "fe80::1:5000", "in brackets"},
		{"empty label", "host..example", "empty label"},
		{"leading dot", ".host", "empty label"},
		{"trailing dot", "host.", "empty label"},
		{"bad host char", "ho!st", "invalid character"},
		{"unicode host", "régistry.example", "invalid character"},
		{"kelvin sign host", "\u212aost", "invalid character"},
		{"percent host", "host%2e", "invalid character"},
		{"unterminated bracket", "[::1", "unterminated"},
		{"empty brackets", "[]", "not an IPv6"},
		{"ipv4 in brackets", "[127.0.0.1]:5000", "not an IPv6"},
		{"name in brackets", "[localhost]", "not an IPv6"},
		{"ipv6 zone", "[fe80::1%eth0]:5000", "zone"},
		{"ipv6 junk after", "[::1]x", "after the IPv6"},
		{"ipv6 bad port", "[::1]:05", "leading zero"},
		{"ipv6 empty port", "[::1]:", "empty port"},
		{"bracket later", "host[1]", "invalid character"},
		{"empty segment", "host/a//b", "empty segment"},
		{"dot segment", "host/a/./b", `"." segment`},
		{"dotdot segment", "host/a/../b", `".." segment`},
		{"dotdot only", "host/..", `".." segment`},
		{"colon early segment", "host/a:v1/b", "colon"},
		{"empty tag", "host/app:", "empty tag"},
		{"bad tag", "host/app:-x", "invalid tag"},
		{"tag only", "host/:v1", "without a repository name"},
		{"tag on empty last segment", "host/a/:v1", "without a repository name"},
		{"double tag", "host/app:v1:v2", "invalid tag"},
		{"long tag", "host/app:" + strings.Repeat("t", 129), "tag longer"},
		{"empty digest", "host/app@", "invalid digest"},
		{"digest no algorithm", "host/app@:abc", "invalid digest"},
		{"digest no colon", "host/app@sha256", "invalid digest"},
		{"digest junk", "host/app@sha256:ab/c", "invalid digest"},
		{"digest only", "host/@sha256:abc", "digest without a repository"},
		{"path bad char", "host/team/app*", "invalid character"},
		{"path backslash", `host/team\app`, "invalid character"},
		{"path unicode", "host/tëam", "invalid character"},
		{"path plus", "host/a+b", "invalid character"},
		{"not a scheme", "host/a://b", "colon"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := resourceid.Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%.80q) = %.80v, want an error about %q", tc.in, id, tc.want)
			}
			if !errors.Is(err, resourceid.ErrInvalid) {
				t.Errorf("Parse(%q) error %v does not wrap ErrInvalid", tc.in, err)
			}
			if id != (resourceid.ID{}) {
				t.Errorf("Parse(%q) returned %+v with its error", tc.in, id)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) error %q does not mention %q", tc.in, err, tc.want)
			}
			// Inputs are not secrets; quoting them is what makes the
			// message useful. Huge ones are cut short.
			if len(tc.in) < 64 && !strings.Contains(err.Error(), strconv.Quote(tc.in)) {
				t.Errorf("Parse(%q) error %q does not quote the input", tc.in, err)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("Parse error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func TestMustParse(t *testing.T) {
	t.Parallel()
	if got := resourceid.MustParse("Host:5000/App"); got != (resourceid.ID{Host: "host:5000", Path: "app"}) {
		t.Errorf("MustParse = %+v", got)
	}
	defer func() {
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, resourceid.ErrInvalid) {
			t.Errorf("MustParse panicked with %v, want an ErrInvalid error", r)
		}
	}()
	resourceid.MustParse("ftp://host")
	t.Error("MustParse did not panic")
}

func TestStringAndRegistry(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		id       resourceid.ID
		str, key string
	}{
		{"host", resourceid.ID{Host: "host:5000"}, "host:5000", "host:5000"},
		{"path", resourceid.ID{Host: "host:5000", Path: "team/app"}, "host:5000/team/app", "host:5000"},
		{"hub", resourceid.ID{Host: "docker.io"}, "docker.io", resourceid.DockerHubKey},
		{"hub path", resourceid.ID{Host: "docker.io", Path: "library/alpine"}, "docker.io/library/alpine", resourceid.DockerHubKey},
		{"ipv6", resourceid.ID{Host: "[::1]:5000", Path: "a"}, "[::1]:5000/a", "[::1]:5000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.id.String(); got != tc.str {
				t.Errorf("String() = %q, want %q", got, tc.str)
			}
			if got := tc.id.Key(); got != tc.key {
				t.Errorf("Key() = %q, want %q", got, tc.key)
			}
			if got := tc.id.Registry(); got != (resourceid.ID{Host: tc.id.Host}) {
				t.Errorf("Registry() = %+v", got)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		id, other string
		want      bool
	}{
		{"registry covers itself", "host:5000", "host:5000", true},
		{"registry covers repo", "host:5000", "host:5000/team/app", true},
		{"repo covers itself", "host/team/app", "host/team/app", true},
		{"prefix covers deeper", "host/team", "host/team/app", true},
		{"prefix covers much deeper", "host/team", "host/team/a/b/c", true},
		{"segment boundary", "host/a/b", "host/a/bc", false},
		{"segment boundary short", "host/a", "host/ab", false},
		{"repo does not cover registry", "host/team/app", "host", false},
		{"repo does not cover parent", "host/team/app", "host/team", false},
		{"sibling", "host/team/app", "host/team/other", false},
		{"different port", "host:5000", "host:5001", false},
		{"port vs none", "host:5000", "host", false},
		{"none vs port", "host", "host:5000", false},
		{"different host", "a.example", "b.example", false},
		{"host prefix is not a host", "host", "host2", false},
		{"hub aliases", "https://index.docker.io/v1/", "registry-1.docker.io/library/alpine", true},
		{"hub official", "docker.io/alpine", "index.docker.io/library/alpine:3", true},
		{"hub user", "docker.io/someuser", "docker.io/someuser/app", false}, // "someuser" alone is library/someuser
		{"hub namespace", "docker.io/someuser/app", "docker.io/someuser/app/sub", true},
		{"case folded", "HOST/Team", "host/team/app", true},
		{"ipv6 forms", "[::1]:5000", "[0:0::1]:5000/app", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, other := resourceid.MustParse(tc.id), resourceid.MustParse(tc.other)
			if got := id.Covers(other); got != tc.want {
				t.Errorf("%v.Covers(%v) = %v, want %v", id, other, got, tc.want)
			}
		})
	}
	t.Run("zero covers nothing", func(t *testing.T) {
		t.Parallel()
		var zero resourceid.ID
		if zero.Covers(zero) || zero.Covers(resourceid.MustParse("host")) {
			t.Error("the zero ID covers something")
		}
	})
}
