package config

import (
	"regexp"
	"strings"
)

// locator finds the line of a key in the file's text. BurntSushi/toml
// keeps key positions private, so errors found after decoding (a wrong
// type, a schema problem) get their line from a plain scan instead: the
// n-th [[connector]] header and the first `key =` inside its block.
type locator struct {
	lines []string
	// headers[i] is the 0-based line of the i-th [[connector]] header.
	headers []int
}

var connectorHeader = regexp.MustCompile(`^\s*\[\[\s*connector\s*\]\]`)

func newLocator(data []byte) locator {
	l := locator{lines: strings.Split(string(data), "\n")}
	for i, line := range l.lines {
		if connectorHeader.MatchString(line) {
			l.headers = append(l.headers, i)
		}
	}
	return l
}

// find returns the 1-based line of the first `key =` in [from, to), or 0.
func (l locator) find(key string, from, to int) int {
	for i := max(from, 0); i < to && i < len(l.lines); i++ {
		t := strings.TrimSpace(l.lines[i])
		for _, k := range []string{key, `"` + key + `"`} {
			if rest, ok := strings.CutPrefix(t, k); ok && strings.HasPrefix(strings.TrimSpace(rest), "=") {
				return i + 1
			}
		}
	}
	return 0
}

// topKey finds a key before the first table header.
func (l locator) topKey(key string) int {
	end := len(l.lines)
	for i, line := range l.lines {
		if strings.HasPrefix(strings.TrimSpace(line), "[") {
			end = i
			break
		}
	}
	if n := l.find(key, 0, end); n > 0 {
		return n
	}
	return l.header("[" + key + "]")
}

func (l locator) header(h string) int {
	for i, line := range l.lines {
		if strings.HasPrefix(strings.TrimSpace(line), h) {
			return i + 1
		}
	}
	return 0
}

// tableKey finds key inside [table].
func (l locator) tableKey(table, key string) int {
	start := l.header("[" + table + "]")
	if start == 0 {
		return 0
	}
	if n := l.find(key, start, len(l.lines)); n > 0 {
		return n
	}
	return start
}

// connectorKey finds field ("resource_id", "config.password") in the i-th
// connector block, falling back to the block's header line.
func (l locator) connectorKey(i int, field string) int {
	if i >= len(l.headers) {
		return 0
	}
	from, to := l.headers[i], len(l.lines)
	if i+1 < len(l.headers) {
		to = l.headers[i+1]
	}
	key := field
	if sub, ok := strings.CutPrefix(field, "config."); ok {
		key = sub
		// Look inside [connector.config] first, where the field usually is.
		for j := from; j < to; j++ {
			if strings.HasPrefix(strings.TrimSpace(l.lines[j]), "[connector.config]") {
				if n := l.find(key, j, to); n > 0 {
					return n
				}
			}
		}
	}
	if n := l.find(key, from, to); n > 0 {
		return n
	}
	return from + 1
}
