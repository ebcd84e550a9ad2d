package testenv

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SeedFile is the path, inside the image SeedImage pushes, of its one file.
const SeedFile = "connectord-seed.txt"

// SeedContent is the content of SeedFile in the image SeedImage pushes to
// repo:tag.
func SeedContent(repo, tag string) string {
	return fmt.Sprintf("connectord testenv seed image %s:%s\n", repo, tag)
}

// SeedImage pushes a small real image to r at repo:tag with crane and returns
// its manifest digest ("sha256:..."). The image has one layer holding
// SeedFile with SeedContent(repo, tag). user and pass are written to a
// private DOCKER_CONFIG as plain base64 "auths" (never to argv); user ""
// means an open registry.
func (r *Registry) SeedImage(t testing.TB, repo, tag, user, pass string) string {
	t.Helper()
	crane := Tool(t, "crane")
	dir := t.TempDir()

	layer := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(layer, seedLayer(repo, tag), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cfgDir := filepath.Join(dir, "docker")
	if err := WriteDockerConfig(cfgDir, r.Host, user, pass); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := setEnv(r.ClientEnv(os.Environ()), "DOCKER_CONFIG", cfgDir)

	ref := r.Host + "/" + repo + ":" + tag
	args := []string{"append", "-f", layer, "-t", ref}
	if !strings.HasPrefix(r.URL, "https://") {
		args = append(args, "--insecure")
	}
	if _, stderr, code := Run(t, env, "", crane, args...); code != 0 {
		t.Fatalf("testenv: crane append to %s: exit %d\n%s", ref, code, stderr)
	}

	args = []string{"digest", ref}
	if !strings.HasPrefix(r.URL, "https://") {
		args = append(args, "--insecure")
	}
	stdout, stderr, code := Run(t, env, "", crane, args...)
	if code != 0 {
		t.Fatalf("testenv: crane digest %s: exit %d\n%s", ref, code, stderr)
	}
	digest := strings.TrimSpace(stdout)
	if hexPart, ok := strings.CutPrefix(digest, "sha256:"); !ok || len(hexPart) != 64 || !isHex(hexPart) {
		t.Fatalf("testenv: crane digest %s printed %q, want sha256:<64 hex>", ref, stdout)
	}
	return digest
}

// WriteDockerConfig writes dir/config.json (0600, dir 0700) in docker's
// format, holding plain base64 "auths" for user on host, or no auths when
// user is "". It is what clients read from DOCKER_CONFIG=dir.
func WriteDockerConfig(dir, host, user, pass string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	type authEntry struct {
		Auth string `json:"auth"`
	}
	cfg := struct {
		Auths map[string]authEntry `json:"auths"`
	}{Auths: map[string]authEntry{}}
	if user != "" {
		cfg.Auths[host] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	}
	data, err := json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o600)
}

// seedLayer returns an uncompressed tar with SeedFile in it.
func seedLayer(repo, tag string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := SeedContent(repo, tag)
	hdr := &tar.Header{
		Name:     SeedFile,
		Mode:     0o644,
		Size:     int64(len(content)),
		ModTime:  time.Unix(0, 0),
		Typeflag: tar.TypeReg,
		Format:   tar.FormatPAX,
	}
	// Writing to a bytes.Buffer cannot fail, and the header is well formed.
	if err := tw.WriteHeader(hdr); err != nil {
		panic(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		panic(err)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}
