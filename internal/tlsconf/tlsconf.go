// Package tlsconf builds the TLS configurations of abortscope's two legs:
// the proxy's own certificate toward clients (from files, reloaded on
// SIGHUP, or generated at start), and how it verifies the upstream.
package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/abortscope/abortscope/session"
)

// Fingerprint is the SHA-256 of a certificate's DER, as colon-separated
// upper-case hex: what MariaDB 11.4 prints for its own generated
// certificate, and what a client pins with --ssl-fp.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// SelfSigned generates an ECDSA P-256 certificate for hosts (names or IP
// addresses), valid from an hour ago for a year.
func SelfSigned(hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "abortscope self-signed"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// KeyPair is a certificate and key loaded from files, replaced in place by
// Reload: connections that start after a reload get the new certificate.
type KeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair loads a PEM certificate (chain) and key.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the files again. On error the certificate in use stays.
func (k *KeyPair) Reload() error {
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", k.certFile, k.keyFile, err)
	}
	k.cur.Store(&c)
	return nil
}

// Leaf returns the certificate in use.
func (k *KeyPair) Leaf() (*x509.Certificate, error) {
	return x509.ParseCertificate(k.cur.Load().Certificate[0])
}

// Config returns the server-side TLS configuration serving the key pair.
func (k *KeyPair) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return k.cur.Load(), nil
		},
	}
}

// ServerConfig is the TLS configuration for a fixed certificate.
func ServerConfig(c tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
}

// Upstream says how the proxy's own TLS session to the server is checked.
type Upstream struct {
	Mode       session.UpstreamTLS
	CAFile     string // PEM CA bundle; empty: the system's
	CertFile   string // client certificate, for servers that require one
	KeyFile    string
	ServerName string // name to verify with verify-full; empty: the host of Addr
	Addr       string // the upstream address
}

// Config builds the client-side TLS configuration for u: preferred and
// required encrypt without checking the certificate (what MariaDB clients
// before 11.4 did by default), verify-ca checks the chain, verify-full the
// chain and the name.
func (u Upstream) Config() (*tls.Config, error) {
	verify := u.Mode == session.UpstreamVerify || u.Mode == session.UpstreamVerifyCA
	if !verify && (u.CAFile != "" || u.ServerName != "") {
		return nil, fmt.Errorf("--upstream-ca and --upstream-server-name need --upstream-tls verify-ca or verify-full (now %s)", u.Mode)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if u.CertFile != "" || u.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(u.CertFile, u.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-cert/--upstream-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	var roots *x509.CertPool
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s: no PEM certificate in it", u.CAFile)
		}
	}
	switch u.Mode {
	case session.UpstreamVerify:
		cfg.RootCAs = roots
		cfg.ServerName = u.ServerName
		if cfg.ServerName == "" {
			host, _, err := net.SplitHostPort(u.Addr)
			if err != nil {
				return nil, fmt.Errorf("--upstream %q: %w", u.Addr, err)
			}
			cfg.ServerName = host
		}
	case session.UpstreamVerifyCA:
		// The chain is checked, the name is not: the standard library
		// checks both or neither, so the chain is checked here.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the upstream sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	default:
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}
