package tlsconf

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/tlstest"
	"github.com/abortscope/abortscope/session"
)

func TestSelfSignedAndFingerprint(t *testing.T) {
	c, err := SelfSigned([]string{"127.0.0.1", "db.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Leaf.VerifyHostname("db.example"); err != nil {
		t.Error(err)
	}
	if err := c.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	fp := Fingerprint(c.Certificate[0])
	if len(fp) != 32*3-1 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Errorf("fingerprint %q", fp)
	}
}

// handshake runs a TLS handshake between server and client configs over
// a loopback pair and returns the client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tls.Server(c, server).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return tls.Client(c, client).Handshake()
}

func TestUpstreamModes(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlstest.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := tlstest.NewCA(dir, "other")
	if err != nil {
		t.Fatal(err)
	}
	good, err := ca.Valid("good", "127.0.0.1", "db.internal")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeyPair(good.CertFile, good.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	server := kp.Config()
	for _, tc := range []struct {
		name string
		u    Upstream
		ok   bool
		err  string
	}{
		{"preferred trusts anything", Upstream{Mode: session.UpstreamPreferred, Addr: "127.0.0.1:3306"}, true, ""},
		{"verify-full, right CA and name", Upstream{Mode: session.UpstreamVerify, CAFile: ca.File, Addr: "127.0.0.1:3306"}, true, ""},
		{"verify-full, name given", Upstream{Mode: session.UpstreamVerify, CAFile: ca.File, ServerName: "db.internal", Addr: "10.0.0.1:3306"}, true, ""},
		{"verify-full, wrong name", Upstream{Mode: session.UpstreamVerify, CAFile: ca.File, ServerName: "other.internal", Addr: "127.0.0.1:3306"}, false, "other.internal"},
		{"verify-full, wrong CA", Upstream{Mode: session.UpstreamVerify, CAFile: other.File, Addr: "127.0.0.1:3306"}, false, "unknown authority"},
		{"verify-ca ignores the name", Upstream{Mode: session.UpstreamVerifyCA, CAFile: ca.File, Addr: "10.9.9.9:3306"}, true, ""},
		{"verify-ca, wrong CA", Upstream{Mode: session.UpstreamVerifyCA, CAFile: other.File, Addr: "127.0.0.1:3306"}, false, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.u.Config()
			if err != nil {
				t.Fatal(err)
			}
			err = handshake(t, server, cfg)
			if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("handshake: %v; want ok=%v (%q)", err, tc.ok, tc.err)
			}
		})
	}
	if _, err := (Upstream{Mode: session.UpstreamPreferred, CAFile: ca.File}).Config(); err == nil {
		t.Error("--upstream-ca without a verify mode accepted")
	}
}

// TestKeyPairReload: a reload serves the new certificate to the next
// handshake; a failed reload keeps the old one.
func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlstest.NewCA(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	first, err := ca.Valid("first", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := LoadKeyPair(first.CertFile, first.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ca.Valid("second", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{second.CertFile, first.CertFile}, {second.KeyFile, first.KeyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	if leaf, _ := kp.Leaf(); leaf.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Error("the reload did not take the new certificate")
	}
	os.WriteFile(first.KeyFile, []byte("garbage"), 0o600)
	if err := kp.Reload(); err == nil {
		t.Error("a broken key reloaded")
	}
	if leaf, _ := kp.Leaf(); leaf.SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Error("a failed reload dropped the certificate in use")
	}
}
