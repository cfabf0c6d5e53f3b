package e2ekit

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/mariadbtest"
)

var userSeq atomic.Int64

// secrets are the passwords the tests log in with: no log line and no event
// of any proxy may hold one (StartProxy checks at cleanup).
var secrets sync.Map

// Secret registers a password a test uses.
func Secret(pass string) {
	if pass != "" {
		secrets.Store(pass, true)
	}
}

// leaked returns the registered passwords that s contains.
func leaked(s string) []string {
	var out []string
	secrets.Range(func(k, _ any) bool {
		if strings.Contains(s, k.(string)) {
			out = append(out, k.(string))
		}
		return true
	})
	return out
}

// NewUser creates a user named prefix_N on db, with all privileges and the
// password "pw-<user>", so that a test's connections are its own.
func NewUser(t testing.TB, db *mariadbtest.Server, prefix string) (user, pass string) {
	t.Helper()
	user = fmt.Sprintf("%s_%d", prefix, userSeq.Add(1))
	pass = "pw-" + user
	Secret(pass)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.CreateUser(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	return user, pass
}

// EnvInt reads a positive number from the environment variable name, or
// returns def when it is unset.
func EnvInt(t testing.TB, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}
