package main

import (
	"fmt"
	"net"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/abortscope/abortscope/internal/tlsconf"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/session"
)

// tlsFlags are serve's TLS flags, for both legs.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "client-tls", Value: string(session.Passthrough), Usage: "what to do with a client that asks for TLS, `MODE`: passthrough (its TLS session is with MariaDB: every client works as it would directly; the proxy judges endings from TLS record sizes), terminate (the proxy completes TLS with its own certificate and sees everything), strip (no TLS offered; a client that asks is refused)"},
		&cli.StringFlag{Name: "tls-cert", Usage: "the proxy's certificate (PEM `FILE`, with its chain) for --client-tls terminate; reloaded on SIGHUP"},
		&cli.StringFlag{Name: "tls-key", Usage: "the key of --tls-cert (PEM `FILE`)"},
		&cli.BoolFlag{Name: "tls-self-signed", Usage: "for --client-tls terminate without --tls-cert: generate a self-signed certificate at start and log its SHA-256 fingerprint (clients must then pin it, or skip verification)"},
		&cli.StringFlag{Name: "upstream-tls", Value: string(session.UpstreamPreferred), Usage: "`MODE` of the proxy's own TLS session to MariaDB, for clients whose session it holds (terminate, strip, plaintext clients): off, preferred (TLS when MariaDB offers it, certificate not checked), required, verify-ca, verify-full"},
		&cli.StringFlag{Name: "upstream-ca", Usage: "CA bundle (PEM `FILE`) to verify MariaDB's certificate with verify-ca/verify-full; default: the system's"},
		&cli.StringFlag{Name: "upstream-cert", Usage: "client certificate (PEM `FILE`) to present to MariaDB"},
		&cli.StringFlag{Name: "upstream-key", Usage: "the key of --upstream-cert (PEM `FILE`)"},
		&cli.StringFlag{Name: "upstream-server-name", Usage: "the `NAME` MariaDB's certificate must carry with verify-full; default: the host of --upstream"},
	}
}

// setUpTLS sets p's TLS fields from serve's flags. It returns what SIGHUP
// reloads (nil when nothing is).
func setUpTLS(cc *cli.Context, p *proxy.Proxy, log *zap.Logger) (reload func() error, err error) {
	if p.ClientTLS, err = session.ParseClientTLS(cc.String("client-tls")); err != nil {
		return nil, usagef("--client-tls: %w", err)
	}
	if p.UpstreamTLS, err = session.ParseUpstreamTLS(cc.String("upstream-tls")); err != nil {
		return nil, usagef("--upstream-tls: %w", err)
	}
	certFile, keyFile, selfSigned := cc.String("tls-cert"), cc.String("tls-key"), cc.Bool("tls-self-signed")
	switch {
	case (certFile == "") != (keyFile == ""):
		return nil, usagef("--tls-cert and --tls-key go together: give both, the certificate and its key")
	case certFile != "" && selfSigned:
		return nil, usagef("--tls-self-signed and --tls-cert exclude each other: drop one")
	case p.ClientTLS == session.Terminate && certFile == "" && !selfSigned:
		return nil, usagef("--client-tls terminate needs a certificate: --tls-cert and --tls-key, or --tls-self-signed")
	case p.ClientTLS != session.Terminate && (certFile != "" || selfSigned):
		return nil, usagef("--tls-cert/--tls-self-signed are for --client-tls terminate (now %s): add --client-tls terminate, or drop them", p.ClientTLS)
	}
	if verify := p.UpstreamTLS == session.UpstreamVerify || p.UpstreamTLS == session.UpstreamVerifyCA; !verify &&
		(cc.String("upstream-ca") != "" || cc.String("upstream-server-name") != "") {
		return nil, usagef("--upstream-ca and --upstream-server-name need --upstream-tls verify-ca or verify-full (now %s)", p.UpstreamTLS)
	}
	switch {
	case certFile != "":
		kp, err := tlsconf.LoadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		p.ClientTLSConfig = kp.Config()
		reload = kp.Reload
		leaf, _ := kp.Leaf()
		log.Info("TLS toward clients: terminated with --tls-cert", zap.String("subject", leaf.Subject.String()),
			zap.Time("not_after", leaf.NotAfter), zap.String("sha256", tlsconf.Fingerprint(leaf.Raw)))
	case selfSigned:
		host, _, _ := net.SplitHostPort(cc.String("listen"))
		c, err := tlsconf.SelfSigned([]string{host, "localhost", "127.0.0.1"})
		if err != nil {
			return nil, fmt.Errorf("--tls-self-signed: %w", err)
		}
		p.ClientTLSConfig = tlsconf.ServerConfig(c)
		log.Info("TLS toward clients: terminated with a self-signed certificate generated at start; clients that verify must pin it (mariadb --ssl-fp)",
			zap.String("sha256", tlsconf.Fingerprint(c.Certificate[0])))
	}
	up := tlsconf.Upstream{Mode: p.UpstreamTLS, CAFile: cc.String("upstream-ca"), CertFile: cc.String("upstream-cert"),
		KeyFile: cc.String("upstream-key"), ServerName: cc.String("upstream-server-name"), Addr: cc.String("upstream")}
	if p.UpstreamTLSConfig, err = up.Config(); err != nil {
		return nil, err
	}
	log.Info("TLS", zap.String("client_tls", string(p.ClientTLS)), zap.String("upstream_tls", string(p.UpstreamTLS)))
	return reload, nil
}
