package protocol

import (
	"math/rand/v2"
	"testing"
)

// TestTrackerSeesThroughTLS: with SeeThroughTLS the handshake response that
// follows an SSLRequest (decrypted by the proxy) is parsed: identity,
// authentication and commands are followed as in plaintext.
func TestTrackerSeesThroughTLS(t *testing.T) {
	c := &conv{}
	caps := baseClientCaps | ClientSSL | ClientDeprecateEOF
	s := run(t, Config{SeeThroughTLS: true}, seq(
		server(c.pk(greeting(11, serverCaps))),
		client(c.pk(sslRequest(caps))),
		expect("still parsing", func(t testing.TB, s Snapshot) {
			eq(t, "SSLRequest", s.SSLRequest, true)
			eq(t, "Opaque", s.Opaque, false)
			eq(t, "Phase", s.Phase, PhaseHandshake)
		}),
		client(c.pk(handshakeResponse(hsOpts{caps: caps, user: "app", db: "shop"}))),
		server(c.pk(ok(ServerStatusAutocommit))),
		client(c.cmd(comQuery("SELECT 1"))),
	))
	eq(t, "User", s.User, "app")
	eq(t, "DB", s.DB, "shop")
	eq(t, "Authenticated", s.Authenticated, true)
	eq(t, "Phase", s.Phase, PhaseCommand)
}

// tlsRecord is a TLS record of type typ with n bytes of payload.
func tlsRecord(typ byte, version uint16, n int) []byte {
	b := []byte{typ, byte(version >> 8), byte(version), byte(n >> 8), byte(n)}
	return append(b, make([]byte, n)...)
}

// serverHello is a ServerHello record choosing suite, with a
// supported_versions extension when v13.
func serverHelloRecord(suite uint16, v13 bool) []byte {
	body := []byte{0x03, 0x03}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 32)                  // session id
	body = append(body, make([]byte, 32)...)
	body = append(body, byte(suite>>8), byte(suite), 0)
	var ext []byte
	if v13 {
		ext = []byte{0, 43, 0, 2, 0x03, 0x04}
	}
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{2, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{tlsHandshake, 3, 3, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func TestTLSRecords(t *testing.T) {
	for _, mode := range feedModes {
		t.Run(mode.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			var r TLSRecords
			feed := func(d Direction, b []byte) {
				for len(b) > 0 {
					n := min(max(mode.next(rng, len(b)), 1), len(b))
					r.Feed(d, b[:n])
					b = b[n:]
				}
			}
			feed(ClientToServer, tlsRecord(tlsHandshake, 0x0301, 300)) // ClientHello
			feed(ServerToClient, serverHelloRecord(0x1302, true))      // TLS_AES_256_GCM_SHA384
			feed(ServerToClient, tlsRecord(tlsChangeCipherSpec, TLS12, 1))
			feed(ServerToClient, tlsRecord(tlsApplicationData, TLS12, 2000)) // EncryptedExtensions..Finished
			if r.Version != TLS13 || r.Suite != 0x1302 {
				t.Fatalf("version %#x suite %#x", r.Version, r.Suite)
			}
			feed(ClientToServer, tlsRecord(tlsChangeCipherSpec, TLS12, 1))
			feed(ClientToServer, tlsRecord(tlsApplicationData, TLS12, 53)) // Finished
			if c := r.Side(ClientToServer); c.App != 0 {
				t.Fatalf("the client's Finished counted as application data: %+v", c)
			}
			feed(ClientToServer, tlsRecord(tlsApplicationData, TLS12, 120)) // handshake response
			feed(ServerToClient, tlsRecord(tlsApplicationData, TLS12, 30))  // OK
			feed(ClientToServer, tlsRecord(tlsApplicationData, TLS12, 22))  // COM_QUIT: 5 + 1 + 16
			cl, sv := r.Side(ClientToServer), r.Side(ServerToClient)
			if cl.App != 2 || cl.LastApp != 22 || cl.PrevApp != 120 || sv.App != 1 || cl.AppSeq <= sv.AppSeq || cl.MidRecord {
				t.Errorf("client %+v server %+v", cl, sv)
			}
			if o, ok := r.Overhead(); !ok || cl.LastApp-o != 5 {
				t.Errorf("overhead %d %v: COM_QUIT not recognised", o, ok)
			}
			feed(ServerToClient, tlsRecord(tlsApplicationData, TLS12, 10)[:7])
			if !r.Side(ServerToClient).MidRecord || r.Broken {
				t.Errorf("a partial record: %+v broken %v", r.Side(ServerToClient), r.Broken)
			}
		})
	}
}

func TestTLSRecordsTLS12(t *testing.T) {
	var r TLSRecords
	r.Feed(ServerToClient, serverHelloRecord(0xc02f, false)) // ECDHE_RSA_WITH_AES_128_GCM_SHA256
	r.Feed(ClientToServer, tlsRecord(tlsApplicationData, TLS12, 29))
	r.Feed(ClientToServer, tlsRecord(tlsAlert, TLS12, 26))
	if r.Version != TLS12 || TLSVersionName(r.Version) != "TLS1.2" {
		t.Fatalf("version %#x", r.Version)
	}
	c := r.Side(ClientToServer)
	if o, ok := r.Overhead(); !ok || c.LastApp-o != 5 || c.App != 1 || c.Alerts != 1 {
		t.Errorf("overhead %d %v side %+v", o, ok, c)
	}
	r.Feed(ClientToServer, []byte("GET / HTTP/1.1\r\n"))
	if !r.Broken {
		t.Error("HTTP taken for TLS records")
	}
}

func FuzzTLSRecords(f *testing.F) {
	f.Add(serverHelloRecord(0x1301, true), tlsRecord(tlsApplicationData, TLS12, 22))
	f.Fuzz(func(t *testing.T, s, c []byte) {
		var r TLSRecords
		r.Feed(ServerToClient, s)
		r.Feed(ClientToServer, c)
		r.Side(ClientToServer)
		r.Overhead()
	})
}
