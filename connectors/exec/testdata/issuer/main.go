// Command issuer is a test credential source for connectors/exec's
// integration tests: a docker credential helper's `get` that, on each
// call, mints a new random user and password valid for a short random
// lifetime, writes every still-valid user to a docker-registry htpasswd
// file (dropping the expired ones, so the registry itself refuses an
// expired credential), and prints the credential-helper JSON.
//
// It is configured by environment variables, as the exec connector's
// `env` sets them:
//
//	ISSUER_STATE     JSON state file (users, passwords, a ledger of every expiry)
//	ISSUER_HTPASSWD  the registry's htpasswd file
//	ISSUER_CALLS     a file that gets one line per call
//	ISSUER_FAIL      if this file exists, print its content to stderr and exit 1
//	ISSUER_MIN_LIFE, ISSUER_MAX_LIFE   lifetime bounds in seconds
//	ISSUER_NO_EXPIRY=1                 leave "ExpiresAt" out of the answer
//
// With -reap it only drops expired users (the test runs it every second).
// Calls are serialised with flock on ISSUER_STATE + ".lock".
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// State is the issuer's memory between calls.
type State struct {
	// Users are the live users: name → password and expiry.
	Users map[string]User `json:"users"`
	// Ledger keeps every user ever minted, for the test to check what it
	// was handed and that the registry refuses it once expired.
	Ledger map[string]User `json:"ledger"`
}

// User is one minted credential.
type User struct {
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

func main() {
	reap := flag.Bool("reap", false, "only drop expired users")
	flag.Parse()
	if err := run(*reap); err != nil {
		fmt.Fprintf(os.Stderr, "issuer: %v\n", err)
		os.Exit(1)
	}
}

func run(reap bool) error {
	statePath := os.Getenv("ISSUER_STATE")
	if statePath == "" || os.Getenv("ISSUER_HTPASSWD") == "" {
		return fmt.Errorf("ISSUER_STATE and ISSUER_HTPASSWD must be set")
	}
	unlock, err := lock(statePath + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	var url string
	if !reap {
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		url = strings.TrimSpace(line)
		if f := os.Getenv("ISSUER_CALLS"); f != "" {
			if err := appendLine(f, fmt.Sprintf("%s %s", time.Now().UTC().Format(time.RFC3339Nano), url)); err != nil {
				return err
			}
		}
		if fail := os.Getenv("ISSUER_FAIL"); fail != "" {
			if msg, err := os.ReadFile(fail); err == nil {
				return fmt.Errorf("%s", strings.TrimSpace(string(msg)))
			}
		}
	}
	st := State{Users: map[string]User{}, Ledger: map[string]User{}}
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("reading state: %w", err)
		}
	}
	now := time.Now()
	for name, u := range st.Users {
		if !now.Before(u.Expires) {
			delete(st.Users, name)
		}
	}
	var name string
	var user User
	if !reap {
		life, err := lifetime()
		if err != nil {
			return err
		}
		name, user = "u-"+randomHex(6), User{Password: randomHex(16), Expires: now.Add(life)}
		st.Users[name] = user
		st.Ledger[name] = user
	}
	pw := map[string]string{}
	for n, u := range st.Users {
		pw[n] = u.Password
	}
	if err := writeHtpasswd(os.Getenv("ISSUER_HTPASSWD"), pw); err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath+".tmp", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(statePath+".tmp", statePath); err != nil {
		return err
	}
	if reap {
		return nil
	}
	out := map[string]string{"ServerURL": url, "Username": name, "Secret": user.Password}
	if os.Getenv("ISSUER_NO_EXPIRY") != "1" {
		out["ExpiresAt"] = user.Expires.UTC().Format(time.RFC3339Nano)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func lifetime() (time.Duration, error) {
	lo, err1 := strconv.Atoi(os.Getenv("ISSUER_MIN_LIFE"))
	hi, err2 := strconv.Atoi(os.Getenv("ISSUER_MAX_LIFE"))
	if err1 != nil || err2 != nil || lo <= 0 || hi < lo {
		return 0, fmt.Errorf("ISSUER_MIN_LIFE and ISSUER_MAX_LIFE must be seconds, min <= max")
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)*1000+1))
	if err != nil {
		return 0, err
	}
	return time.Duration(lo)*time.Second + time.Duration(n.Int64())*time.Millisecond, nil
}

func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(line + "\n")
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// writeHtpasswd replaces path with bcrypt entries for users. The new file
// always gets a later modification time than the old one: docker-registry
// notices changes by modification time alone, and two writes within one
// tick of a coarse clock would otherwise look like one.
func writeHtpasswd(path string, users map[string]string) error {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(users)) {
		hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.MinCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", name, hash)
	}
	tmp := filepath.Join(filepath.Dir(path), ".htpasswd.issuer")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if old, err := os.Stat(path); err == nil {
		if fi, err := os.Stat(tmp); err == nil && !fi.ModTime().After(old.ModTime()) {
			later := old.ModTime().Add(time.Millisecond)
			if err := os.Chtimes(tmp, later, later); err != nil {
				return err
			}
		}
	}
	return os.Rename(tmp, path)
}
