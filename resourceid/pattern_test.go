package resourceid_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/connectord/connectord/resourceid"
)

func TestParsePattern(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
		wildcards      int
	}{
		{"ecr", "*.dkr.ecr.*.amazonaws.com", "*.dkr.ecr.*.amazonaws.com", 2},
		{"upper case folded", "*.AzureCR.IO", "*.azurecr.io", 1},
		{"partial label", "app*.k8s.io", "app*.k8s.io", 1},
		{"star runs collapse", "a**b.example", "a*b.example", 1},
		{"tld glob", "k8s.*", "k8s.*", 1},
		{"port", "*.example.com:5000", "*.example.com:5000", 1},
		{"path prefix", "*.example.com/Team/", "*.example.com/team", 1},
		{"path tag dropped", "*.example.com/team/app:v1", "*.example.com/team/app", 1},
		{"ipv4 label glob", "127.0.0.*:5000", "127.0.0.*:5000", 1},
		{"bare star", "*", "*", 1},
		{"surrounding space", "  *.gcr.io\n", "*.gcr.io", 1},
		{"no glob is an id", "https://Index.Docker.IO/v1/", "docker.io", 0},
		{"no glob with path", "ghcr.io/Team", "ghcr.io/team", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := resourceid.ParsePattern(tc.in)
			if err != nil {
				t.Fatalf("ParsePattern(%q): %v", tc.in, err)
			}
			if p.String() != tc.want || p.Wildcards() != tc.wildcards || p.IsGlob() != (tc.wildcards > 0) {
				t.Fatalf("ParsePattern(%q) = %q with %d wildcards, want %q with %d", tc.in, p, p.Wildcards(), tc.want, tc.wildcards)
			}
			again, err := resourceid.ParsePattern(p.String())
			if err != nil || again.String() != p.String() {
				t.Fatalf("ParsePattern(%q) = %q, %v", p.String(), again, err)
			}
		})
	}
}

func TestParsePatternInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"scheme", "https://*.example.com", "no scheme"},
		{"glob in path", "host.example/*", "host only"},
		{"glob in path with glob host", "*.example/team/*", "host only"},
		{"glob in port", "*.example:5*", "not in the port"},
		{"ipv6", "[::*]:5000", "IPv6"},
		{"empty label", "*..example", "empty label"},
		{"bad char", "*.exa$mple", "invalid character"},
		{"question mark", "?.example", "query or fragment"},
		{"class", "[a-z].example", "not an IPv6"},
		{"userinfo", "u@*.example", "userinfo"},
		{"bad port", "*.example:0", "out of range"},
		{"two colons", "*.example:1:2", "more than one colon"},
		{"space", "*. example", "whitespace"},
		{"no host", "*:5000", ""},
		{"dot segment", "*.example/a/../b", `".." segment`},
		{"empty", "", "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := resourceid.ParsePattern(tc.in)
			if tc.name == "no host" {
				// "*" alone is a valid one-label host glob, so "*:5000"
				// is valid too: it matches any single-label host on 5000.
				if err != nil || !p.Match(resourceid.MustParse("localhost:5000")) {
					t.Fatalf("ParsePattern(%q) = %v, %v", tc.in, p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePattern(%q) = %q, want an error about %q", tc.in, p, tc.want)
			}
			if !errors.Is(err, resourceid.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePattern(%q) error %q: want ErrInvalid and %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, id string
		want        bool
	}{
		// Host labels: one "*" matches within one label, label counts must agree.
		{"*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com", true},
		{"*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:v1", true},
		{"*.dkr.ecr.*.amazonaws.com", "dkr.ecr.us-east-1.amazonaws.com", false},
		{"*.dkr.ecr.*.amazonaws.com", "a.b.dkr.ecr.us-east-1.amazonaws.com", false},
		{"*.io", "k8s.io", true},
		{"*.io", "a.k8s.io", false},
		{"k8s.*", "k8s.io", true},
		{"app*.k8s.io", "apps.k8s.io", true},
		{"app*.k8s.io", "app.k8s.io", true},
		{"app*.k8s.io", "web.k8s.io", false},
		{"*", "localhost", true},
		{"*", "a.b", false},
		// Ports: equal, absent == absent (the kubelet's rule).
		{"*.example.com:5000", "r.example.com:5000", true},
		{"*.example.com:5000", "r.example.com:5001", false},
		{"*.example.com:5000", "r.example.com", false},
		{"*.example.com", "r.example.com:5000", false},
		{"127.0.0.*:5000", "127.0.0.1:5000", true},
		// Paths: whole-segment prefixes.
		{"*.example.com/team", "r.example.com/team/app", true},
		{"*.example.com/team", "r.example.com/team", true},
		{"*.example.com/team", "r.example.com/teams/app", false},
		{"*.example.com/team", "r.example.com", false},
		// IPv6 literals have no labels.
		{"*", "[::1]", false},
		// Glob-free patterns are IDs.
		{"docker.io", "https://index.docker.io/v1/", true},
		{"ghcr.io/team", "ghcr.io/team/app", true},
		{"ghcr.io/team", "ghcr.io/teams", false},
	}
	for _, tc := range cases {
		p := resourceid.MustParsePattern(tc.pattern)
		id := resourceid.MustParse(tc.id)
		if got := p.Match(id); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.id, got, tc.want)
		}
	}
	var zero resourceid.Pattern
	if zero.Match(resourceid.MustParse("x")) || zero.MatchRegistry(resourceid.MustParse("x")) || !zero.IsZero() {
		t.Error("the zero Pattern matches something")
	}
}

func TestPatternMatchRegistry(t *testing.T) {
	t.Parallel()
	p := resourceid.MustParsePattern("*.example.com/team")
	if !p.MatchRegistry(resourceid.MustParse("r.example.com")) || !p.MatchRegistry(resourceid.MustParse("r.example.com/other")) {
		t.Error("MatchRegistry must ignore paths")
	}
	if p.MatchRegistry(resourceid.MustParse("r.example.org")) {
		t.Error("MatchRegistry matched another host")
	}
	if !resourceid.MustParsePattern("ghcr.io/team").MatchRegistry(resourceid.MustParse("ghcr.io")) {
		t.Error("a glob-free pattern must match its own registry")
	}
}

// The daemon and the kubelet plugin connector rely on this order: fewest
// wildcards, then longest, then lexical.
func TestComparePatterns(t *testing.T) {
	t.Parallel()
	in := []string{"*", "*.*.example.com", "*.example.com", "r.example.com", "*.example.com/team", "a*.example.com", "*.example.co"}
	var ps []resourceid.Pattern
	for _, s := range in {
		ps = append(ps, resourceid.MustParsePattern(s))
	}
	slices.SortFunc(ps, resourceid.ComparePatterns)
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	want := []string{"r.example.com", "*.example.com/team", "a*.example.com", "*.example.com", "*.example.co", "*", "*.*.example.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("sorted = %q, want %q", got, want)
	}
}
