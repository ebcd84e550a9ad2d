package resourceid_test

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/connectord/connectord/resourceid"
)

// FuzzParse feeds Parse what a docker client could put on a credential
// helper's stdin. More seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:5000",
		"https://index.docker.io/v1/",
		"HOST:5000/team/app",
		"http://host:5000",
		"docker.io/alpine:3@sha256:abc",
		"[::1]:5000",
		"https://[fe80::1]/v2/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := resourceid.Parse(s)
		if err != nil {
			if !errors.Is(err, resourceid.ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if id != (resourceid.ID{}) {
				t.Fatalf("Parse(%q) returned %+v with its error", s, id)
			}
			return
		}
		str, key := id.String(), id.Key()
		if strings.ContainsFunc(str, unicode.IsSpace) || strings.ContainsFunc(key, unicode.IsSpace) {
			t.Fatalf("Parse(%q): String %q or Key %q contains whitespace", s, str, key)
		}
		if id.Host == "" || strings.HasPrefix(id.Path, "/") || strings.HasSuffix(id.Path, "/") {
			t.Fatalf("Parse(%q) = %+v is not canonical", s, id)
		}
		again, err := resourceid.Parse(str)
		if err != nil || again != id {
			t.Fatalf("Parse(%q) = %+v but Parse(%q) = %+v, %v", s, id, str, again, err)
		}
		reg, err := resourceid.Parse(key)
		if err != nil || reg != id.Registry() {
			t.Fatalf("Parse(%q) = %+v but Parse(Key %q) = %+v, %v", s, id, key, reg, err)
		}
		if !id.Covers(id) || !id.Registry().Covers(id) {
			t.Fatalf("%+v does not cover itself or is not covered by its registry", id)
		}
		if id.Path != "" && id.Covers(id.Registry()) {
			t.Fatalf("%+v covers its whole registry", id)
		}
	})
}

// FuzzParsePattern feeds ParsePattern what a config's resource_id or a
// kubelet plugin's response key could hold. More seeds live in
// testdata/fuzz/FuzzParsePattern.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{
		"*.dkr.ecr.*.amazonaws.com",
		"app*.k8s.io:5000/team",
		"*",
		"docker.io",
		"https://*.example.com",
		"*.example.com/a/*",
		"[::*]:5000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := resourceid.ParsePattern(s)
		if err != nil {
			if !errors.Is(err, resourceid.ErrInvalid) {
				t.Fatalf("ParsePattern(%q) error %v does not wrap ErrInvalid", s, err)
			}
			if !p.IsZero() {
				t.Fatalf("ParsePattern(%q) returned %q with its error", s, p)
			}
			return
		}
		str := p.String()
		if str == "" || strings.ContainsFunc(str, unicode.IsSpace) || strings.Contains(str, "**") {
			t.Fatalf("ParsePattern(%q) = %q is not canonical", s, str)
		}
		again, err := resourceid.ParsePattern(str)
		if err != nil || again.String() != str || again.Wildcards() != p.Wildcards() {
			t.Fatalf("ParsePattern(%q) = %q but ParsePattern(%q) = %q, %v", s, str, str, again, err)
		}
		if p.Wildcards() != strings.Count(str, "*") {
			t.Fatalf("ParsePattern(%q): %d wildcards in %q", s, p.Wildcards(), str)
		}
		// Filling every "*" with a letter gives an ID the pattern must
		// match, and putting one more label in front gives one it must not.
		concrete, err := resourceid.Parse(strings.ReplaceAll(str, "*", "x"))
		if err != nil {
			t.Fatalf("ParsePattern(%q) = %q, whose instance does not parse: %v", s, str, err)
		}
		// Docker Hub's aliases fold to one host ("inde*.docker.io" filled
		// is "index.docker.io", which is docker.io): no glob names them.
		if !concrete.IsDockerHub() && (!p.Match(concrete) || !p.MatchRegistry(concrete)) {
			t.Fatalf("%q does not match its own instance %+v", str, concrete)
		}
		if p.IsGlob() {
			extra, err := resourceid.Parse("extra." + concrete.String())
			if err == nil && p.Match(extra) {
				t.Fatalf("%q matches %+v, which has one label more", str, extra)
			}
		}
	})
}
