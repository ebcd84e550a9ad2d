// Package resourceid canonicalises docker-registry resource IDs: the server
// URL a docker client hands a credential helper on stdin for get, store and
// erase ("127.0.0.1:5000", "https://index.docker.io/v1/", "host:5000/team/app")
// and the resource_id a user writes for a connector in the config. Both go
// through Parse, so a connector matches however a client spells its registry.
//
// Docker keys credentials by host alone: its ConvertToHostname drops the
// scheme and any path. An ID additionally keeps a repository path, written
// without a scheme, so that a connector can serve one repository prefix;
// crane with a credsStore asks for "host/repo" before it asks for "host".
package resourceid

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DockerHubKey is the key docker itself uses for Docker Hub credentials.
const DockerHubKey = "https://index.docker.io/v1/"

// DockerHubHost is the canonical host of Docker Hub.
const DockerHubHost = "docker.io"

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid registry resource id")

// maxLen bounds both the input and the canonical form. The canonical form can
// be longer than the input (Docker Hub's "library/", an IPv4-mapped IPv6
// address written in hex), and bounding it too keeps Parse(id.String())
// from failing where Parse(s) succeeded.
const maxLen = 2048

// maxQuoted keeps error messages readable when the input is huge; inputs are
// not secrets, so they are otherwise quoted in full.
const maxQuoted = 128

// maxTag is docker's limit on a tag (distribution/reference).
const maxTag = 128

// dockerHubAliases are the hosts docker, the registry and common tools use
// for Docker Hub. Only the bare host is an alias: with a port it is some
// other server that happens to share the name.
var dockerHubAliases = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// ID is a canonical registry resource ID. The zero ID is not valid; Parse
// never returns it without an error.
type ID struct {
	Host string // lower-cased host[:port]; IPv6 literals in brackets "[::1]:5000"; Docker Hub aliases are DockerHubHost
	Path string // repository path, no leading/trailing slash; "" means the whole registry
}

// Parse canonicalises s. Every error wraps ErrInvalid.
//
// Surrounding whitespace is trimmed; any other whitespace, control character
// or invalid UTF-8 is an error, as is an input or a canonical form longer
// than 2048 bytes, a query ("?"), a fragment ("#") or userinfo ("user@host").
//
// With an "http://" or "https://" scheme (any case) whatever follows the host
// is an API path ("/v1/", "/v2/") and is discarded; other schemes are errors.
// Without a scheme, everything after the first "/" is a repository path.
//
// The host is lower-cased. It is either a DNS name or IPv4 address made of
// dot-separated labels of [a-z0-9_-], or an IPv6 literal in brackets, which is
// rewritten in its RFC 5952 form ("[0:0::1]" becomes "[::1]") and may not
// carry a zone ("%eth0"): a zone names an interface of one machine and has no
// business in a credential key. An optional port is decimal 1..65535 without
// leading zeros. Docker Hub's aliases without a port become DockerHubHost.
//
// In the repository path a trailing "@digest" and a ":tag" on the last
// segment are checked and dropped, slashes at either end are trimmed, and the
// rest is lower-cased. Each segment must be non-empty, not "." or "..", and
// made of docker's repository-name characters [a-z0-9._-]. A single-segment
// Docker Hub path is an official image and gets "library/" prepended, as
// docker does.
func Parse(s string) (ID, error) {
	id, err := parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("%w %s: %v", ErrInvalid, quote(s), err)
	}
	return id, nil
}

// MustParse is Parse for tests and constants; it panics on an invalid s.
func MustParse(s string) ID {
	id, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

// Key returns the key docker itself files credentials under. Docker Hub has
// one key for the whole registry, so every Docker Hub ID maps to it whatever
// its path; other registries are keyed by host[:port].
func (id ID) Key() string {
	if id.IsDockerHub() {
		return DockerHubKey
	}
	return id.Host
}

// String returns Host, or Host+"/"+Path; Parse of it returns id again.
func (id ID) String() string {
	if id.Path == "" {
		return id.Host
	}
	return id.Host + "/" + id.Path
}

// IsDockerHub reports whether id names Docker Hub or a repository on it.
func (id ID) IsDockerHub() bool { return id.Host == DockerHubHost }

// Registry returns the whole registry id belongs to.
func (id ID) Registry() ID { return ID{Host: id.Host} }

// Covers reports whether a connector for id serves other: the same host
// (a different port is a different registry) and a path that is empty, equal
// or a whole-segment prefix, so "a/b" covers "a/b/c" but not "a/bc". The zero
// ID covers nothing, so an unset resource ID can never match by accident.
func (id ID) Covers(other ID) bool {
	if id.Host == "" || id.Host != other.Host {
		return false
	}
	return id.Path == "" || id.Path == other.Path || strings.HasPrefix(other.Path, id.Path+"/")
}

func parse(in string) (ID, error) {
	s := strings.TrimSpace(in)
	if s == "" {
		return ID{}, errors.New("empty")
	}
	if len(s) > maxLen {
		return ID{}, fmt.Errorf("longer than %d bytes", maxLen)
	}
	if err := checkChars(s); err != nil {
		return ID{}, err
	}
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return ID{}, fmt.Errorf("a query or fragment (%q) is not allowed", s[i])
	}

	rest, withScheme := s, false
	// A "://" whose prefix is not a scheme token is left to the host and
	// path rules, which reject it with a message about what is really wrong.
	if scheme, after, ok := strings.Cut(s, "://"); ok && isScheme(scheme) {
		switch lowerASCII(scheme) {
		case "http", "https":
			rest, withScheme = after, true
		default:
			return ID{}, fmt.Errorf("unsupported scheme %q (only http and https)", scheme)
		}
	}

	hostport, path, _ := strings.Cut(rest, "/")
	if strings.Contains(hostport, "@") {
		return ID{}, errors.New("userinfo (user@host) is not allowed; credentials belong in the connector")
	}
	host, err := parseHost(hostport)
	if err != nil {
		return ID{}, err
	}
	id := ID{Host: host}
	// With a scheme the path is a registry API path, never a repository:
	// docker sends "https://index.docker.io/v1/" for Docker Hub as a whole.
	if !withScheme {
		if id.Path, err = parsePath(path); err != nil {
			return ID{}, err
		}
	}
	if dockerHubAliases[id.Host] {
		id.Host = DockerHubHost
		// "index.docker.io/v1/" is docker's key written without its
		// scheme (users copy it from config.json); no official image is
		// named v1 or v2, so take those as the API path they are.
		if id.Path == "v1" || id.Path == "v2" {
			id.Path = ""
		}
		if id.Path != "" && !strings.Contains(id.Path, "/") {
			id.Path = "library/" + id.Path
		}
	}
	if n := len(id.String()); n > maxLen {
		return ID{}, fmt.Errorf("canonical form is %d bytes, longer than %d", n, maxLen)
	}
	return id, nil
}

func checkChars(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			return fmt.Errorf("whitespace %q at byte %d", r, i)
		case unicode.IsControl(r):
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
	}
	return nil
}

// isScheme reports whether s is an RFC 3986 scheme.
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func parseHost(hp string) (string, error) {
	if hp == "" {
		return "", errors.New("no registry host")
	}
	if hp[0] == '[' {
		return parseIPv6Host(hp)
	}
	name, port, hasPort := strings.Cut(lowerASCII(hp), ":")
	if hasPort && strings.Contains(port, ":") {
		return "", errors.New("more than one colon in the host; an IPv6 address must be in brackets, as in \"[::1]:5000\"")
	}
	if name == "" {
		return "", errors.New("no registry host")
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return "", fmt.Errorf("empty label in host %q", name)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLower(c) && !isDigit(c) && c != '-' && c != '_' {
				return "", fmt.Errorf("invalid character %q in host %q", c, name)
			}
		}
	}
	if !hasPort {
		return name, nil
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return name + ":" + port, nil
}

func parseIPv6Host(hp string) (string, error) {
	end := strings.IndexByte(hp, ']')
	if end < 0 {
		return "", errors.New("unterminated \"[\" in the host")
	}
	addr, err := netip.ParseAddr(hp[1:end])
	if err != nil || !addr.Is6() {
		return "", fmt.Errorf("%q in brackets is not an IPv6 address", hp[1:end])
	}
	if addr.Zone() != "" {
		return "", fmt.Errorf("IPv6 zone %q is not allowed", addr.Zone())
	}
	host := "[" + addr.String() + "]"
	rest := hp[end+1:]
	if rest == "" {
		return host, nil
	}
	port, ok := strings.CutPrefix(rest, ":")
	if !ok {
		return "", fmt.Errorf("unexpected %q after the IPv6 address", rest)
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return host + ":" + port, nil
}

// checkPort accepts only the form a port is written in a URL. Leading zeros
// are rejected rather than stripped: "host:05000" is far more likely a typo
// than a deliberate spelling, and keeping the port as written keeps the key
// identical to docker's.
func checkPort(p string) error {
	if p == "" {
		return errors.New("empty port")
	}
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return fmt.Errorf("port %q is not a decimal number", p)
		}
	}
	if p[0] == '0' && p != "0" {
		return fmt.Errorf("port %q has a leading zero", p)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is out of range 1-65535", p)
	}
	return nil
}

func parsePath(p string) (string, error) {
	name, digest, hasDigest := strings.Cut(p, "@")
	if hasDigest {
		if err := checkDigest(digest); err != nil {
			return "", err
		}
	}
	name = strings.Trim(name, "/")
	last := name[strings.LastIndexByte(name, '/')+1:]
	base, tag, hasTag := strings.Cut(last, ":")
	if hasTag {
		if err := checkTag(tag); err != nil {
			return "", err
		}
		if base == "" {
			return "", fmt.Errorf("tag %q without a repository name", tag)
		}
		name = name[:len(name)-len(last)] + base
	}
	if name == "" {
		if hasDigest {
			return "", errors.New("digest without a repository")
		}
		return "", nil
	}
	name = lowerASCII(name)
	for seg := range strings.SplitSeq(name, "/") {
		switch seg {
		case "":
			return "", fmt.Errorf("empty segment in repository path %q", name)
		case ".", "..":
			return "", fmt.Errorf("%q segment in repository path %q", seg, name)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			switch {
			case isLower(c) || isDigit(c) || c == '.' || c == '_' || c == '-':
			case c == ':':
				return "", fmt.Errorf("colon in segment %q; only the last segment may carry a :tag", seg)
			default:
				return "", fmt.Errorf("invalid character %q in repository path %q", c, name)
			}
		}
	}
	return name, nil
}

// checkTag follows docker's tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
// The tag is dropped, but a malformed one means the input is not the
// reference its author thinks it is.
func checkTag(t string) error {
	if t == "" {
		return errors.New("empty tag after \":\"")
	}
	if len(t) > maxTag {
		return fmt.Errorf("tag longer than %d bytes", maxTag)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isAlpha(c) && !isDigit(c) && c != '_' && (i == 0 || (c != '.' && c != '-')) {
			return fmt.Errorf("invalid tag %q", t)
		}
	}
	return nil
}

// checkDigest follows docker's digest grammar loosely (algorithm:encoded),
// for the same reason as checkTag.
func checkDigest(d string) error {
	alg, enc, ok := strings.Cut(d, ":")
	if !ok || alg == "" || enc == "" {
		return fmt.Errorf("invalid digest %q (want algorithm:encoded)", d)
	}
	for i := 0; i < len(alg); i++ {
		if c := alg[i]; !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("+._-", rune(c)) {
			return fmt.Errorf("invalid digest %q", d)
		}
	}
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; !isAlpha(c) && !isDigit(c) && c != '=' && c != '_' && c != '-' {
			return fmt.Errorf("invalid digest %q", d)
		}
	}
	return nil
}

// lowerASCII folds only A-Z. strings.ToLower would also fold non-ASCII
// look-alikes such as the Kelvin sign into ASCII letters and so accept a
// host nobody can type.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func isAlpha(c byte) bool { return isLower(c) || (c >= 'A' && c <= 'Z') }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// quote cuts a huge input short so one bad line cannot flood a log.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	i := maxQuoted
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strconv.Quote(s[:i]) + fmt.Sprintf("... (%d bytes)", len(s))
}
