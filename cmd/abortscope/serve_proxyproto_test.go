package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/proxyproto"
)

// TestServeProxyProtocolFlags: --accept-proxy-protocol (a comma list, and
// repeated) lets a peer name its client, and --upstream-proxy-protocol
// passes that client on in the header the upstream reads first.
func TestServeProxyProtocolFlags(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	headers := make(chan proxyproto.Header, 1)
	errs := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		h, err := proxyproto.Read(c)
		if err != nil {
			errs <- err
			return
		}
		headers <- h
	}()
	s := startServe(t, &upstream{ln: ln}, "--upstream-proxy-protocol", "v1",
		"--accept-proxy-protocol", "192.0.2.0/24, 127.0.0.1", "--accept-proxy-protocol", "2001:db8::/32")
	defer ln.Close()

	c, err := net.Dial("tcp", s.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PROXY TCP4 10.9.8.7 192.0.2.1 40000 3306\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-headers:
		if h.Version != 1 || h.Source != netip.MustParseAddrPort("10.9.8.7:40000") || h.Destination.String() != s.listen {
			t.Errorf("upstream header %+v, want v1 10.9.8.7:40000 -> %s", h, s.listen)
		}
	case err := <-errs:
		t.Fatalf("upstream: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no upstream connection within 10 s")
	}
	line := s.logLine("PROXY protocol")
	nets, _ := line["accept_from"].([]any)
	if line["upstream"] != "v1" || len(nets) != 3 || nets[1] != "127.0.0.1/32" {
		t.Errorf("log line: %v", line)
	}
}

func TestServeRefusesBadProxyProtocolFlags(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--upstream-proxy-protocol", "v3"}, `--upstream-proxy-protocol "v3"`},
		{[]string{"--upstream-proxy-protocol", "V1"}, "want v1 or v2"},
		{[]string{"--accept-proxy-protocol", "10.0.0.0/33"}, `--accept-proxy-protocol: "10.0.0.0/33" is not a network in CIDR form`},
		{[]string{"--accept-proxy-protocol", "10.0.0.0/8,"}, "--accept-proxy-protocol: empty network"},
		{[]string{"--accept-proxy-protocol", "lb.example"}, `"lb.example" is neither`},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			args := append([]string{"abortscope", "serve", "--listen", "127.0.0.1:0", "--admin", "", "--events", "-"}, tc.flags...)
			serveRefuses(t, args, tc.want)
		})
	}
}
