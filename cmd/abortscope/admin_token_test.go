package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeAdminToken: serve refuses a non-loopback --admin without a
// token and a token file others can read; with --admin-token-file the API
// wants the token, and `abortscope fault list` sends it from the same
// file.
func TestServeAdminToken(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	if err := os.WriteFile(loose, []byte("tok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"abortscope", "serve", "--listen", "127.0.0.1:0"}
	serveRefuses(t, append(append([]string(nil), base...), "--admin", "0.0.0.0:0", "--admin-allow-remote"), "--admin-token")
	serveRefuses(t, append(append([]string(nil), base...), "--admin-token-file", loose), "chmod 600")
	serveRefuses(t, append(append([]string(nil), base...), "--admin-token", "a", "--admin-token-file", loose), "not both")

	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, startUpstream(t), "--admin-token-file", tokFile, "--allow-faults")
	if code, _ := httpDo(t, "GET", s.admin+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without the token: %d, want 200", code)
	}
	if code, _ := httpDo(t, "GET", s.admin+"/faults", ""); code != http.StatusUnauthorized {
		t.Errorf("/faults without the token: %d, want 401", code)
	}
	if out, err := runCLI(t, "fault", "list", "--admin", s.admin); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("fault list without the token: %v %s; want an error about the token", err, out)
	}
	if out, err := runCLI(t, "fault", "list", "--admin", s.admin, "--admin-token-file", tokFile); err != nil {
		t.Errorf("fault list with the token file: %v\n%s", err, out)
	}
	if strings.Contains(s.stderr.String(), "s3cret-token") {
		t.Error("the token appears in serve's log")
	}
}
