package resourceid

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Pattern is a registry resource pattern with the kubelet's matchImages
// semantics (k8s.io/kubernetes pkg/credentialprovider URLsMatch), used by
// connectors that serve a family of registries, such as
// "*.dkr.ecr.*.amazonaws.com", and by the keys of a kubelet credential
// provider's response.
//
// Rules, as the kubelet applies them:
//   - the host is split on "."; the target must have the same number of
//     labels, and each pattern label matches its target label, where "*"
//     matches any run of characters within that one label ("*.io" does not
//     match "a.b.io"; "app*.k8s.io" matches "apps.k8s.io");
//   - the ports must be equal: a pattern with a port matches only that port,
//     and a pattern without one matches only targets without one (the
//     kubelet compares both ports as strings, and a registry on another
//     port is another registry, as ID.Covers has it);
//   - an optional repository path is a prefix, matched whole segments at a
//     time like ID.Covers ("team" covers "team/app", not "teams").
//
// Globs are allowed in the host only, never in the port or path, and not
// in an IPv6 literal. A pattern without "*" is an ordinary ID and matches
// exactly what that ID covers (Docker Hub aliases folded, and so on).
//
// The zero Pattern matches nothing.
type Pattern struct {
	host      string // lower-cased host without port; may hold "*"
	port      string // "" when the pattern has none
	path      string // repository path prefix, "" for the whole registry
	wildcards int    // number of "*" in host
	// exact is the pattern when it has no wildcard; Match then defers to
	// ID.Covers so that a glob-free pattern and an ID agree everywhere.
	exact ID
}

// ParsePattern canonicalises s as a Pattern. Every error wraps ErrInvalid.
//
// Without a "*" it is Parse. With one, a scheme, userinfo, query,
// fragment, whitespace, control characters and invalid UTF-8 are errors,
// as are empty labels, characters other than [a-z0-9_-*] in the host, a
// "*" in the port or path, and anything Parse rejects in a port or path.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	if err != nil {
		return Pattern{}, fmt.Errorf("%w %s: %v", ErrInvalid, quote(s), err)
	}
	return p, nil
}

// MustParsePattern is ParsePattern for tests and constants; it panics on an
// invalid s.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic(err)
	}
	return p
}

// PatternOf returns the glob-free pattern that matches what id covers.
func PatternOf(id ID) Pattern {
	return Pattern{host: id.Host, path: id.Path, exact: id}
}

// IsGlob reports whether the pattern has a wildcard.
func (p Pattern) IsGlob() bool { return p.wildcards > 0 }

// Wildcards returns the number of "*" in the pattern.
func (p Pattern) Wildcards() int { return p.wildcards }

// IsZero reports whether p is the zero Pattern, which matches nothing.
func (p Pattern) IsZero() bool { return p.host == "" }

// String returns the canonical form; ParsePattern of it returns p again.
func (p Pattern) String() string {
	if !p.IsGlob() {
		return p.exact.String()
	}
	s := p.host
	if p.port != "" {
		s += ":" + p.port
	}
	if p.path != "" {
		s += "/" + p.path
	}
	return s
}

// Match reports whether p matches id (see Pattern for the rules).
func (p Pattern) Match(id ID) bool {
	if !p.IsGlob() {
		return p.exact.Covers(id)
	}
	if !p.matchHost(id.Host) {
		return false
	}
	return p.path == "" || p.path == id.Path || strings.HasPrefix(id.Path, p.path+"/")
}

// MatchRegistry reports whether p matches some repository of id's
// registry: host and port match, whatever the paths. The daemon uses it to
// find a connector that would shadow a stored credential for that registry.
func (p Pattern) MatchRegistry(id ID) bool {
	if !p.IsGlob() {
		return p.exact.Host != "" && p.exact.Host == id.Host
	}
	return p.matchHost(id.Host)
}

func (p Pattern) matchHost(hostport string) bool {
	if hostport == "" || hostport[0] == '[' {
		// An IPv6 literal has no labels for a glob to match.
		return false
	}
	name, port, _ := strings.Cut(hostport, ":")
	if port != p.port {
		return false
	}
	pat := p.host
	for {
		pl, prest, pmore := strings.Cut(pat, ".")
		tl, trest, tmore := strings.Cut(name, ".")
		if pmore != tmore {
			return false // different numbers of labels
		}
		// Labels hold only [a-z0-9_-*], so path.Match sees no
		// metacharacter but "*", which never crosses a "." here because
		// each label is matched on its own.
		if ok, _ := path.Match(pl, tl); !ok {
			return false
		}
		if !pmore {
			return true
		}
		pat, name = prest, trest
	}
}

// ComparePatterns orders patterns from the most specific to the least:
// fewer wildcards first, then the longer canonical form, then by the
// canonical form so the order is total. The daemon tries glob connectors
// in this order, and the kubelet plugin connector picks among a
// response's keys with it.
func ComparePatterns(a, b Pattern) int {
	if c := cmp.Compare(a.wildcards, b.wildcards); c != 0 {
		return c
	}
	as, bs := a.String(), b.String()
	if c := cmp.Compare(len(bs), len(as)); c != 0 {
		return c
	}
	return strings.Compare(as, bs)
}

func parsePattern(in string) (Pattern, error) {
	s := strings.TrimSpace(in)
	if !strings.Contains(s, "*") {
		id, err := parse(s)
		if err != nil {
			return Pattern{}, err
		}
		return PatternOf(id), nil
	}
	if len(s) > maxLen {
		return Pattern{}, fmt.Errorf("longer than %d bytes", maxLen)
	}
	if err := checkChars(s); err != nil {
		return Pattern{}, err
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return Pattern{}, fmt.Errorf("a query or fragment (%q) is not allowed", s[i])
	}
	if strings.Contains(s, "://") {
		return Pattern{}, errors.New("a pattern has no scheme; write host[:port][/path], as in \"*.example.com\"")
	}
	hostport, rest, _ := strings.Cut(s, "/")
	if strings.Contains(hostport, "@") {
		return Pattern{}, errors.New("userinfo (user@host) is not allowed; credentials belong in the connector")
	}
	if strings.Contains(rest, "*") {
		return Pattern{}, errors.New("\"*\" is allowed in the host only, not in the repository path")
	}
	if strings.HasPrefix(hostport, "[") {
		return Pattern{}, errors.New("\"*\" is not allowed in an IPv6 address")
	}
	name, port, hasPort := strings.Cut(lowerASCII(hostport), ":")
	if hasPort {
		if strings.Contains(port, ":") {
			return Pattern{}, errors.New("more than one colon in the host")
		}
		if strings.Contains(port, "*") {
			return Pattern{}, errors.New("\"*\" is allowed in the host only, not in the port")
		}
		if err := checkPort(port); err != nil {
			return Pattern{}, err
		}
	}
	if name == "" {
		return Pattern{}, errors.New("no registry host")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return Pattern{}, fmt.Errorf("empty label in host %q", name)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLower(c) && !isDigit(c) && c != '-' && c != '_' && c != '*' {
				return Pattern{}, fmt.Errorf("invalid character %q in host %q", c, name)
			}
		}
	}
	// "**" matches what "*" matches; collapse runs so that one pattern
	// has one canonical form.
	for strings.Contains(name, "**") {
		name = strings.ReplaceAll(name, "**", "*")
	}
	p := Pattern{host: name, port: port, wildcards: strings.Count(name, "*")}
	var err error
	if p.path, err = parsePath(rest); err != nil {
		return Pattern{}, err
	}
	if n := len(p.String()); n > maxLen {
		return Pattern{}, fmt.Errorf("canonical form is %d bytes, longer than %d", n, maxLen)
	}
	return p, nil
}
