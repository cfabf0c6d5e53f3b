package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/session"
)

// benchResult is the reply the bench server streams for "S": a one-column
// text result of n rows of size bytes, with the framing MariaDB uses
// (sequence ids from 1, wrapping), ending in a DEPRECATE_EOF OK.
func benchResult(n, size int) []byte {
	s := &fakeSession{seq: 1, caps: clientCaps & fakeCaps}
	b := s.packet(nil, []byte{1})
	b = s.packet(b, s.columnDef("x"))
	row := append(protocol.PutLenEncInt(nil, uint64(size)), bytes.Repeat([]byte{'x'}, size)...)
	for range n {
		b = s.packet(b, row)
	}
	return s.packet(b, okPayload(0xfe))
}

var benchOK = protocol.AppendPacket(nil, 1, okPayload(0))

// benchServer serves one connection: greeting, OK to the login, then for
// each command the prepared reply ("S": stream, "P": OK), without
// allocating per command. It ends at COM_QUIT or when the peer goes.
func benchServer(ln net.Listener, stream []byte, done chan<- error) {
	c, err := ln.Accept()
	if err != nil {
		done <- err
		return
	}
	defer c.Close()
	if _, err := c.Write(protocol.AppendPacket(nil, 0, fakeGreeting(1))); err != nil {
		done <- err
		return
	}
	buf := make([]byte, 64<<10)
	read := func() (byte, error) {
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return 0, err
		}
		n := int(buf[0]) | int(buf[1])<<8 | int(buf[2])<<16
		if _, err := io.ReadFull(c, buf[4:4+n]); err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
		return buf[4], nil
	}
	if _, err := read(); err != nil { // handshake response
		done <- err
		return
	}
	if _, err := c.Write(protocol.AppendPacket(nil, 2, okPayload(0))); err != nil {
		done <- err
		return
	}
	for {
		cmd, err := read()
		if err != nil || cmd == protocol.ComQuit {
			done <- nil
			return
		}
		reply := benchOK
		if buf[5] == 'S' {
			reply = stream
		}
		if _, err := c.Write(reply); err != nil {
			done <- err
			return
		}
	}
}

// benchConn is a logged-in client connection to addr.
func benchConn(b *testing.B, addr string) net.Conn {
	c, err := dialClient(addr)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.login(login{user: "bench", db: "bench"}); err != nil {
		b.Fatal(err)
	}
	if c.r.Buffered() != 0 {
		b.Fatal("unexpected bytes after the login")
	}
	return c.c
}

// BenchmarkRelay measures the forwarding path: a large result streamed
// through the proxy (MB/s), and small query/OK round trips. "direct" runs
// the same client and server without the proxy, for comparison; the
// client and server allocate nothing per operation, so allocs/op is the
// proxy's. "proxy+faults" has fault injection enabled with no rule armed
// (serve --allow-faults): it must cost what "proxy" costs, 0 allocs/op;
// "proxy+faults-unmatched" has a rule armed for another user, the price of
// checking it on every chunk.
func BenchmarkRelay(b *testing.B) {
	stream := benchResult(4096, 1000) // about 4 MiB in 4096 packets
	for _, via := range []string{"proxy", "proxy+faults", "proxy+faults-unmatched", "direct"} {
		for _, mode := range []string{"stream", "pingpong"} {
			b.Run(via+"/"+mode, func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				done := make(chan error, 1)
				go benchServer(ln, stream, done)
				addr := ln.Addr().String()
				var p *Proxy
				served := make(chan error, 1)
				if via != "direct" {
					pln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					// The fake greeting offers TLS, which the bench server
					// does not speak: no upstream TLS of the proxy's own.
					p = &Proxy{Upstream: addr, UpstreamTLS: session.UpstreamOff}
					if via != "proxy" {
						p.Faults = faults.NewSet(1, nil)
					}
					if via == "proxy+faults-unmatched" {
						if _, err := p.Faults.Add(faults.Rule{User: "someone-else", Action: faults.ResetServer}); err != nil {
							b.Fatal(err)
						}
					}
					go func() { served <- p.Serve(pln) }()
					addr = pln.Addr().String()
				}
				c := benchConn(b, addr)
				query := protocol.AppendPacket(nil, 0, []byte{protocol.ComQuery, 'P'})
				reply := make([]byte, len(benchOK))
				if mode == "stream" {
					query = protocol.AppendPacket(nil, 0, []byte{protocol.ComQuery, 'S'})
					reply = make([]byte, len(stream))
					b.SetBytes(int64(len(stream)))
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(query); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, reply); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if mode == "stream" && !bytes.Equal(reply, stream) {
					b.Fatal("the result changed on the way")
				}
				c.Write([]byte{1, 0, 0, 0, protocol.ComQuit})
				c.Close()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				if p != nil {
					if err := p.Shutdown(b.Context()); err != nil {
						b.Fatal(err)
					}
					<-served
				}
			})
		}
	}
}
