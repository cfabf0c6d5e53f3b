package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/abortscope/abortscope/proxy"
)

// proxyProtocolFlags are serve's PROXY protocol flags.
func proxyProtocolFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "upstream-proxy-protocol", Usage: "open each upstream connection with a PROXY protocol header of `VERSION` v1 or v2 naming the client, so MariaDB (proxy_protocol_networks) logs and authenticates the client instead of the proxy"},
		&cli.StringSliceFlag{Name: "accept-proxy-protocol", Usage: "peers in these networks (`CIDR`[,CIDR], or addresses; repeatable) must open with a PROXY protocol header, whose source then is the client; a header from any other peer is refused"},
	}
}

// setUpProxyProtocol sets p's PROXY protocol fields from serve's flags.
func setUpProxyProtocol(cc *cli.Context, p *proxy.Proxy, log *zap.Logger) error {
	switch v := cc.String("upstream-proxy-protocol"); v {
	case "", proxy.ProxyProtocolV1, proxy.ProxyProtocolV2:
		p.UpstreamProxyProtocol = v
	default:
		return usagef("--upstream-proxy-protocol %q: want v1 or v2", v)
	}
	// The app turns off the flag library's comma splitting (fault specs
	// hold commas), so lists are split here.
	for _, arg := range cc.StringSlice("accept-proxy-protocol") {
		for _, s := range strings.Split(arg, ",") {
			n, err := parseNetwork(strings.TrimSpace(s))
			if err != nil {
				return usagef("--accept-proxy-protocol: %w", err)
			}
			p.AcceptProxyProtocol = append(p.AcceptProxyProtocol, n)
		}
	}
	if p.UpstreamProxyProtocol != "" || len(p.AcceptProxyProtocol) > 0 {
		nets := make([]string, len(p.AcceptProxyProtocol))
		for i, n := range p.AcceptProxyProtocol {
			nets[i] = n.String()
		}
		log.Info("PROXY protocol", zap.String("upstream", p.UpstreamProxyProtocol), zap.Strings("accept_from", nets))
	}
	return nil
}

// parseNetwork reads a CIDR, or one address as a network of its own.
func parseNetwork(s string) (*net.IPNet, error) {
	if s == "" {
		return nil, fmt.Errorf("empty network in the list")
	}
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a network in CIDR form (e.g. 10.0.0.0/8): %w", s, err)
		}
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("%q is neither a CIDR network (e.g. 10.0.0.0/8) nor an IP address", s)
	}
	if ip4 := ip.To4(); ip4 != nil {
		return &net.IPNet{IP: ip4, Mask: net.CIDRMask(32, 32)}, nil
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(128, 128)}, nil
}
