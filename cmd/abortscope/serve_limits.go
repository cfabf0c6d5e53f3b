package main

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/proxy"
)

// limitFlags are the proxy's own limits and its watch on the upstream
// socket.
func limitFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "max-connections", Value: 0, Usage: "at most `N` connections relayed at once; one more gets ERR 1040 (Too many connections) and an event saying proxy_limit (0: unlimited)"},
		&cli.DurationFlag{Name: "handshake-timeout", Value: 10 * time.Second, Usage: "how long (`DURATION`) a client may take from connecting to its login's OK; then it gets an ERR where the protocol allows and the event says handshake_abort (0: no limit)"},
		&cli.DurationFlag{Name: "upstream-keepalive", Value: 15 * time.Second, Usage: "idle time (`DURATION`) before TCP keepalive probes on upstream connections, so a vanished server is noticed (0: off)"},
		&cli.DurationFlag{Name: "upstream-user-timeout", Value: 30 * time.Second, Usage: "TCP_USER_TIMEOUT (`DURATION`) on upstream connections: how long sent data and keepalive probes may go unacknowledged before the connection is dropped (0: the kernel's default, about 15 minutes)"},
	}
}

// setUpLimits applies the limit flags to p.
func setUpLimits(cc *cli.Context, p *proxy.Proxy) error {
	if n := cc.Int("max-connections"); n < 0 {
		return usagef("--max-connections %d: want 0 (unlimited) or more", n)
	}
	p.MaxConnections = cc.Int("max-connections")
	// The flags say 0 for "none"; the Proxy fields use 0 for their
	// default and a negative value for "none".
	off := func(d time.Duration) time.Duration {
		if d <= 0 {
			return -1
		}
		return d
	}
	p.HandshakeTimeout = off(cc.Duration("handshake-timeout"))
	p.UpstreamKeepAlive = off(cc.Duration("upstream-keepalive"))
	p.UpstreamUserTimeout = off(cc.Duration("upstream-user-timeout"))
	return nil
}
