package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connectord/connectord/internal/testenv"
)

const (
	seedRepo = "team/app"
	seedTag  = "v1"
)

// clientCase is one client driven through the helper and the daemon
// against a registry whose only credentials are in the daemon's config.
type clientCase struct {
	name string
	dc   func(r *testenv.Registry) dockerConf
	run  func(t *testing.T, c *client, r *testenv.Registry, digest string)
}

var (
	credsStore  = func(*testenv.Registry) dockerConf { return dockerConf{credsStore: true} }
	credHelpers = func(r *testenv.Registry) dockerConf { return dockerConf{credHelpers: []string{r.Host}} }
)

var clientCases = []clientCase{
	{"crane", credsStore, testCrane},
	{"oras", credsStore, testOras},
	{"regctl", credsStore, testRegctl},
	{"skopeo", credHelpers, testSkopeo},
	{"podman", credHelpers, testPodman},
}

// TestClients: every client reads (and crane and oras push) through
// docker-credential-connector and the daemon, against docker-registry
// with htpasswd over plain HTTP and over TLS from a CA the test makes. The
// password exists only in the daemon's config (and in the seed step's
// private config), so a success proves the daemon served it.
func TestClients(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name         string
		tls          bool
		passwordFrom string
	}{
		{"http", false, ""},
		{"tls", true, "file"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			const user = "labuser"
			pass := newPassword(t, user)
			reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: mode.tls, Users: map[string]string{user: pass}})
			digest := reg.SeedImage(t, seedRepo, seedTag, user, pass)
			d := startDaemon(t, daemonOpts{connectors: []connectorConf{{
				name: "lab", resourceID: reg.Host, username: user, password: pass, passwordFrom: mode.passwordFrom,
			}}})
			for _, cc := range clientCases {
				t.Run(cc.name, func(t *testing.T) {
					t.Parallel()
					c := newClient(t, d.socket, cc.dc(reg), reg)
					cc.run(t, c, reg, digest)
				})
			}
		})
	}
}

func seedRef(r *testenv.Registry) string { return r.Host + "/" + seedRepo + ":" + seedTag }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// crane: manifest and digest of the seed image, a copy to a new tag, and
// a push of a new image (append) that is read back with export.
func testCrane(t *testing.T, c *client, r *testenv.Registry, digest string) {
	crane := testenv.Tool(t, "crane")
	flags := craneFlags(r)

	m := mustSucceed(t, c.run(crane, append([]string{"manifest", seedRef(r)}, flags...)...))
	if got := sha256Digest([]byte(m.stdout)); got != digest {
		t.Errorf("crane manifest: digest %s, SeedImage pushed %s", got, digest)
	}

	copied := r.Host + "/" + seedRepo + ":copied"
	mustSucceed(t, c.run(crane, append([]string{"copy", seedRef(r), copied}, flags...)...))
	if got := strings.TrimSpace(mustSucceed(t, c.run(crane, append([]string{"digest", copied}, flags...)...)).stdout); got != digest {
		t.Errorf("crane digest of the copy: %s, want %s", got, digest)
	}

	content := "pushed by crane through connectord\n"
	layer := filepath.Join(c.work, "layer.tar")
	writeFile(t, layer, string(tarOf(t, "crane-push.txt", content)))
	pushed := r.Host + "/team/crane-pushed:v1"
	a := mustSucceed(t, c.run(crane, append([]string{"append", "-f", layer, "-t", pushed}, flags...)...))
	// append prints HOST/REPO@sha256:...
	_, pushedDigest, ok := strings.Cut(strings.TrimSpace(a.stdout), "@")
	if !ok {
		t.Fatalf("crane append printed no digest:\n%s", a)
	}
	if got := strings.TrimSpace(mustSucceed(t, c.run(crane, append([]string{"digest", pushed}, flags...)...)).stdout); got != pushedDigest {
		t.Errorf("crane digest %s = %s, append printed %s", pushed, got, pushedDigest)
	}
	x := mustSucceed(t, c.run(crane, append([]string{"export", pushed, "-"}, flags...)...))
	if got := fileInTar(t, []byte(x.stdout), "crane-push.txt"); got != content {
		t.Errorf("crane export %s: crane-push.txt holds %q, want %q", pushed, got, content)
	}
}

// oras: manifest fetch of the seed image; push of a file artifact, read
// back with pull. oras reads $DOCKER_CONFIG/config.json (or
// --registry-config FILE).
func testOras(t *testing.T, c *client, r *testenv.Registry, digest string) {
	oras := testenv.Tool(t, "oras")
	flags := orasFlags(r)

	m := mustSucceed(t, c.run(oras, append([]string{"manifest", "fetch", seedRef(r)}, flags...)...))
	if got := sha256Digest([]byte(m.stdout)); got != digest {
		t.Errorf("oras manifest fetch: digest %s, SeedImage pushed %s", got, digest)
	}

	content := "pushed by oras through connectord\n"
	writeFile(t, filepath.Join(c.work, "artifact.txt"), content)
	ref := r.Host + "/team/oras-artifact:v1"
	// oras push wants a relative path (it becomes the file's title).
	p := mustSucceed(t, c.run(oras, append([]string{"push", ref, "artifact.txt:text/plain"}, flags...)...))
	pushedDigest := regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})$`).FindStringSubmatch(p.stdout)
	if pushedDigest == nil {
		t.Fatalf("oras push printed no Digest line:\n%s", p)
	}
	f := mustSucceed(t, c.run(oras, append([]string{"manifest", "fetch", ref}, flags...)...))
	if got := sha256Digest([]byte(f.stdout)); got != pushedDigest[1] {
		t.Errorf("oras manifest fetch %s: digest %s, push printed %s", ref, got, pushedDigest[1])
	}
	out := mkdir(t, filepath.Join(c.dir, "pulled"))
	mustSucceed(t, c.run(oras, append([]string{"pull", "-o", out, ref}, flags...)...))
	got, err := os.ReadFile(filepath.Join(out, "artifact.txt"))
	if err != nil || string(got) != content {
		t.Errorf("oras pull %s: artifact.txt = %q (%v), want %q", ref, got, err, content)
	}
}

// regctl: manifest get. It asks the helper for list, then get. Plain
// HTTP must be set per registry first (`regctl registry set --tls
// disabled`), which writes ~/.regctl/config.json under HOME; for TLS it
// trusts SSL_CERT_FILE.
func testRegctl(t *testing.T, c *client, r *testenv.Registry, digest string) {
	regctl := testenv.Tool(t, "regctl")
	if !isTLS(r) {
		mustSucceed(t, c.run(regctl, "registry", "set", "--tls", "disabled", r.Host))
	}
	m := mustSucceed(t, c.run(regctl, "manifest", "get", "--format", "raw-body", seedRef(r)))
	if got := sha256Digest([]byte(m.stdout)); got != digest {
		t.Errorf("regctl manifest get: digest %s, SeedImage pushed %s", got, digest)
	}
	h := mustSucceed(t, c.run(regctl, "manifest", "get", seedRef(r)))
	if !strings.Contains(h.stdout, digest) {
		t.Errorf("regctl manifest get does not show the digest %s:\n%s", digest, h)
	}
}

// skopeo: inspect. skopeo ignores credsStore and reaches a helper only
// through credHelpers; it finds $DOCKER_CONFIG/config.json by itself
// (after its own auth.json locations, which are empty here).
func testSkopeo(t *testing.T, c *client, r *testenv.Registry, digest string) {
	skopeo := testenv.Tool(t, "skopeo")
	args := append([]string{"inspect"}, containersFlags(r)...)
	i := mustSucceed(t, c.run(skopeo, append(args, "docker://"+seedRef(r))...))
	var got struct{ Digest string }
	if err := json.Unmarshal([]byte(i.stdout), &got); err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, i)
	}
	if got.Digest != digest {
		t.Errorf("skopeo inspect: Digest %s, SeedImage pushed %s", got.Digest, digest)
	}
}

// testPodman pulls into a vfs store in the test's temp dir. podman 4.3
// as root also writes to /var/lib/containers/cache, /run/libpod and
// /etc/cni/net.d whatever --root says, so it runs in a private mount
// namespace with a tmpfs over each of those trees.
func testPodman(t *testing.T, c *client, r *testenv.Registry, digest string) {
	podman := testenv.Tool(t, "podman")
	unshare := testenv.Tool(t, "unshare")
	if os.Geteuid() != 0 {
		skipOrFail(t, "podman runs under `unshare -m`, which needs root")
	}
	// The tmpfs mounts hide these trees; the test's own files must not be
	// in them.
	for _, p := range []string{c.dir, binDir, envValue(c.env, "CONNECTORD_SOCKET")} {
		for _, hidden := range []string{"/run/", "/var/lib/"} {
			if strings.HasPrefix(p, hidden) {
				skipOrFail(t, "podman's private mounts would hide "+p)
			}
		}
	}
	pdir := mkdir(t, filepath.Join(c.dir, "podman"))
	base := []string{
		"-m", "--propagation", "private", "sh", "-c",
		`set -e; for d in /run /var/lib /etc/cni/net.d; do if [ -d "$d" ]; then mount -n -t tmpfs tmpfs "$d"; fi; done; exec "$@"`,
		"sh", podman,
		"--storage-driver", "vfs",
		"--root", mkdir(t, filepath.Join(pdir, "root")),
		// podman refuses a runroot of 50 characters or more.
		"--runroot", testenv.ShortTempDir(t),
		"--network-config-dir", mkdir(t, filepath.Join(pdir, "net")),
	}
	pull := append(append(append(base[:len(base):len(base)], "pull"), containersFlags(r)...), seedRef(r))
	p := mustSucceed(t, c.run(unshare, pull...))
	imageID := strings.TrimSpace(p.stdout)
	if len(imageID) != 64 {
		t.Errorf("podman pull printed %q, want a 64-hex image id", p.stdout)
	}
	inspect := append(base[:len(base):len(base)], "image", "inspect", "--format", "{{.Digest}}", seedRef(r))
	i := mustSucceed(t, c.run(unshare, inspect...))
	if got := strings.TrimSpace(i.stdout); got != digest {
		t.Errorf("podman image inspect: Digest %s, SeedImage pushed %s", got, digest)
	}
}

// skipOrFail skips the test, or fails it under CI=true, like a missing
// tool.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if testenv.InCI() {
		t.Fatalf("%s (CI=true: this is a failure)", why)
	}
	t.Skipf("%s (skipping: set CI=true to make this a failure)", why)
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// tarOf is a one-file tar archive.
func tarOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fileInTar returns the content of name in the tar stream b.
func fileInTar(t *testing.T, b []byte, name string) string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("no %s in the tar stream", name)
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return string(data)
		}
	}
}
