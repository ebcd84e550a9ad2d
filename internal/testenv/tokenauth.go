package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// tokenService is the registry's service name: the token's audience.
	tokenService = "connectord-testenv"
	// tokenIssuer is the token's issuer, which the registry checks.
	tokenIssuer = "connectord-testenv-token-server"
)

// StartTokenRegistry starts a registry behind a token server (see
// RegistryOptions.TokenAuth) with the given users (name → password).
// The token server grants each user the repositories under its own name
// only, so seed images as USER/...:
//
//	r := testenv.StartTokenRegistry(t, map[string]string{"alice": "pw"})
//	r.SeedImage(t, "alice/app", "v1", "alice", "pw")
func StartTokenRegistry(t testing.TB, users map[string]string) *Registry {
	t.Helper()
	return StartRegistry(t, RegistryOptions{Users: users, TokenAuth: true})
}

// tokenServer is a running docker/distribution contrib token-server.
type tokenServer struct {
	realm    string // http(s)://localhost:PORT/token/
	certFile string // the signing key's self-signed certificate: the registry's rootcertbundle
	logPath  string
	cmd      *exec.Cmd
	done     chan struct{}
}

// startTokenServer runs token-server on a free loopback port, signing with
// a fresh RSA key, checking users against htpasswd. With tlsCert it serves
// HTTPS with the registry's own certificate (which covers localhost): a
// registry reached over HTTPS may not send clients to a plain-HTTP realm.
//
// The realm is on localhost, not 127.0.0.1: go-containerregistry refuses
// a realm that is a loopback IP literal other than the registry's own
// host:port.
func startTokenServer(t testing.TB, dir, htpasswd, tlsCert, tlsKey string, roots *x509.CertPool) *tokenServer {
	t.Helper()
	bin := Tool(t, "token-server")
	tdir := filepath.Join(dir, "token")
	if err := os.Mkdir(tdir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	keyFile, certFile, err := writeSigningKey(tdir)
	if err != nil {
		t.Fatalf("testenv: token signing key: %v", err)
	}
	ts := &tokenServer{certFile: certFile, logPath: filepath.Join(tdir, "token-server.log")}
	scheme := "http"
	if tlsCert != "" {
		scheme = "https"
	}
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: roots}},
	}
	defer client.CloseIdleConnections()

	for attempt := 1; ; attempt++ {
		port := strconv.Itoa(freePort(t))
		args := []string{
			"-addr", net.JoinHostPort("127.0.0.1", port),
			"-issuer", tokenIssuer,
			"-key", keyFile,
			"-passwd", htpasswd,
			"-realm", htpasswdRealm,
		}
		if tlsCert != "" {
			args = append(args, "-tlscert", tlsCert, "-tlskey", tlsKey)
		}
		ts.realm = scheme + "://localhost:" + port + "/token/"
		if err := ts.start(bin, tdir, args); err != nil {
			t.Fatalf("testenv: starting token-server: %v", err)
		}
		// Asked on 127.0.0.1: that is where it listens, whatever
		// localhost resolves to first.
		err := ts.waitReady(client, scheme+"://127.0.0.1:"+port+"/token/")
		if err == nil {
			break
		}
		ts.stop()
		logText := ts.logText()
		if errors.Is(err, errExited) && strings.Contains(logText, "address already in use") && attempt < registryStartAttempts {
			t.Logf("testenv: token-server lost the race for port %s, retrying", port)
			continue
		}
		t.Fatalf("testenv: token-server on port %s: %v\nlog %s:\n%s", port, err, ts.logPath, tail(logText, 40))
	}
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("testenv: token-server %s log (%s), tail:\n%s", ts.realm, ts.logPath, tail(ts.logText(), 40))
		}
	})
	return ts
}

func (ts *tokenServer) start(bin, dir string, args []string) error {
	logFile, err := os.Create(ts.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	ts.cmd = cmd
	ts.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(ts.done)
	}()
	return nil
}

// waitReady polls the token endpoint until it challenges an anonymous
// GET with 401, the answer only a token server gives.
func (ts *tokenServer) waitReady(client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), registryStartTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-ts.done:
			return fmt.Errorf("%w: %s", errExited, ts.cmd.ProcessState)
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), htpasswdRealm) {
				return nil
			}
			last = fmt.Errorf("GET /token/: %s", resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", registryStartTimeout, last)
		case <-ts.done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (ts *tokenServer) stop() {
	if ts.cmd == nil {
		return
	}
	select {
	case <-ts.done:
		return
	default:
	}
	_ = ts.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ts.done:
	case <-time.After(registryStopTimeout):
		_ = ts.cmd.Process.Kill()
		<-ts.done
	}
}

func (ts *tokenServer) logText() string {
	b, err := os.ReadFile(ts.logPath)
	if err != nil {
		return fmt.Sprintf("[testenv: reading token-server log: %v]", err)
	}
	return string(b)
}

// tokenAuth is the registry's auth section for a token server.
func tokenAuth(realm, service, issuer, rootCertBundle string) string {
	return fmt.Sprintf(`auth:
  token:
    realm: %s
    service: %s
    issuer: %s
    rootcertbundle: %s
`, yamlString(realm), yamlString(service), yamlString(issuer), yamlString(rootCertBundle))
}

// signingKey is one RSA key per test process: generating a 2048-bit key
// takes a noticeable fraction of a second under -race, and each registry
// gets its own copy of the files anyway.
var signingKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// writeSigningKey writes the token server's signing key as a traditional
// PEM ("RSA PRIVATE KEY", PKCS#1: libtrust, which the token server loads
// keys with, reads no PKCS#8) and a self-signed certificate for it, which
// the registry trusts as its rootcertbundle.
func writeSigningKey(dir string) (keyFile, certFile string, err error) {
	key, err := signingKey()
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyFile = filepath.Join(dir, "key.pem")
	certFile = filepath.Join(dir, "cert.pem")
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return keyFile, certFile, nil
}
