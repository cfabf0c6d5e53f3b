package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

// The fuzz targets' seeds come from the frame builders, so plain `go test`
// runs every decoder on realistic input as well.

func FuzzReadLenEncInt(f *testing.F) {
	for _, v := range []uint64{0, 0xfa, 0xfb, 0xffff, 0x10000, 0xffffff, 1 << 32, ^uint64(0)} {
		f.Add(PutLenEncInt(nil, v), 0)
	}
	f.Add([]byte{0xfb}, 0)
	f.Add([]byte{0xff}, 0)
	f.Add([]byte{0xfc, 0x01}, 0)
	f.Add([]byte{0x01, 0xfd, 1, 2}, 1)
	f.Add([]byte{0x03, 'a', 'b', 'c'}, -1)
	f.Fuzz(func(t *testing.T, data []byte, pos int) {
		v, next, ok := ReadLenEncInt(data, pos)
		if !ok {
			if next != pos {
				t.Fatalf("failure moved next to %d from %d", next, pos)
			}
		} else {
			if next <= pos || next > len(data) || next-pos > 9 {
				t.Fatalf("next = %d for pos %d, len %d", next, pos, len(data))
			}
			enc := PutLenEncInt(nil, v)
			if back, _, _ := ReadLenEncInt(enc, 0); back != v {
				t.Fatalf("re-encoding %#x reads back %#x", v, back)
			}
		}
		s, next, ok := ReadLenEncString(data, pos)
		if ok && (next > len(data) || len(s) > len(data)) {
			t.Fatalf("string of %d bytes, next %d, from %d bytes", len(s), next, len(data))
		}
		if s, next, ok := ReadNulString(data, pos); ok && (next > len(data) || bytes.IndexByte(s, 0) >= 0) {
			t.Fatalf("NUL string %q next %d", s, next)
		}
	})
}

func FuzzParseGreeting(f *testing.F) {
	f.Add(greeting(testConnID, serverCaps))
	f.Add(greeting(1, serverCaps|ClientMySQL))
	f.Add(greeting(2, ClientProtocol41))
	f.Add(errPacket(1040, "08004", "Too many connections"))
	const mask = UnfollowableCaps | MariaDBClientProgress | ClientProgressObsolete
	f.Fuzz(func(t *testing.T, data []byte) {
		g, ok := ParseGreeting(data)
		masked := append([]byte(nil), data...)
		mg, mok := MaskGreeting(masked, mask)
		if ok != mok {
			t.Fatalf("ParseGreeting ok=%v, MaskGreeting ok=%v", ok, mok)
		}
		if !ok {
			if !bytes.Equal(masked, data) {
				t.Fatal("MaskGreeting changed a packet it could not parse")
			}
			return
		}
		if mg.Caps != g.Caps&^mask {
			t.Fatalf("masked caps %#x, want %#x", mg.Caps, g.Caps&^mask)
		}
		rg, rok := ParseGreeting(masked)
		if !rok || rg.Caps != mg.Caps || rg.ConnectionID != g.ConnectionID {
			t.Fatalf("reparse: %+v, %v; want caps %#x", rg, rok, mg.Caps)
		}
		for i := range data {
			if data[i] == masked[i] {
				continue
			}
			in := func(p, n int) bool { return p >= 0 && i >= p && i < p+n }
			if !in(g.capLowPos, 2) && !in(g.capHighPos, 2) && !in(g.extCapsPos, 4) {
				t.Fatalf("byte %d outside the caps fields changed", i)
			}
		}
	})
}

func FuzzParseHandshakeResponse(f *testing.F) {
	f.Add(handshakeResponse(clientOpts(ClientDeprecateEOF | MariaDBClientCacheMetadata)))
	f.Add(handshakeResponse(clientOpts(ClientMySQL | ClientCompress)))
	f.Add(handshakeResponse(hsOpts{caps: ClientProtocol41, user: "u", authResponse: []byte("x")}))
	f.Add(sslRequest(baseClientCaps | ClientSSL))
	f.Add(nulStr(nulStr(append(le16(nil, uint16(ClientConnectWithDB)), 0, 0, 1), "root"), "pw"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := ParseHandshakeResponse(data)
		masked := append([]byte(nil), data...)
		MaskHandshakeResponse(masked, UnfollowableCaps)
		if len(masked) != len(data) {
			t.Fatal("mask changed the length")
		}
		r2, ok2 := ParseHandshakeResponse(masked)
		if !ok || !ok2 {
			return // clearing CLIENT_SSL turns an SSLRequest into a short response
		}
		if r2.Caps != r.Caps&^UnfollowableCaps {
			t.Fatalf("masked caps %#x, want %#x", r2.Caps, r.Caps&^UnfollowableCaps)
		}
		if r2.User != r.User || r2.DB != r.DB || !reflect.DeepEqual(r2.Attrs, r.Attrs) {
			t.Fatalf("masking changed identity: %+v vs %+v", r, r2)
		}
	})
}

func FuzzParseOK(f *testing.F) {
	f.Add(okPacket(okOpts{affected: 1, id: 2, info: "x"}), trackCaps)
	f.Add(okPacket(okOpts{sysvar: "autocommit", schema: "crm"}), trackCaps)
	f.Add(okEOF(ServerMoreResultsExists), trackCaps|ClientDeprecateEOF)
	f.Add(append(stateOKHead(), 0x00, 0x03, 0x01, 0x05, 'a'), trackCaps)
	f.Add([]byte{0, 1, 2}, uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, caps uint64) {
		o, ok := ParseOK(data, caps)
		if ok && data[0] != headerOK && data[0] != headerEOF {
			t.Fatalf("ok for header %#x", data[0])
		}
		if o.SchemaChanged && (!ok || caps&ClientSessionTrack == 0 || o.Status&ServerSessionStateChanged == 0) {
			t.Fatalf("schema change without session tracking: %+v", o)
		}
	})
}

func FuzzParseERR(f *testing.F) {
	f.Add(errPacket(1045, "28000", "Access denied"))
	f.Add(errPacket(1040, "", "Too many connections"))
	f.Add(progress(1, 2, 300, "stage"))
	f.Add([]byte{0xff, 1, 2, '#', 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok := ParseERR(data)
		if !ok {
			return
		}
		if e.Code != uint16(data[1])|uint16(data[2])<<8 {
			t.Fatalf("code %d from % x", e.Code, data[:3])
		}
		if len(e.SQLState) != 0 && len(e.SQLState) != 5 {
			t.Fatalf("SQL state %q", e.SQLState)
		}
		back, ok := ParseERR(AppendERR(nil, e.Code, e.SQLState, e.Message))
		if !ok || back.Code != e.Code {
			t.Fatalf("round trip: %+v -> %+v", e, back)
		}
		_ = IsProgress(data)
	})
}

func FuzzParseChangeUser(f *testing.F) {
	f.Add(changeUser(baseClientCaps, "bob", "crm", "client_ed25519", newAttrs), baseClientCaps)
	f.Add(changeUser(ClientProtocol41, "bob", "", "", nil), ClientProtocol41)
	f.Add(append(nulStr([]byte{ComChangeUser}, "bob"), 0), baseClientCaps)
	f.Fuzz(func(t *testing.T, data []byte, caps uint64) {
		r, ok := ParseChangeUser(data, caps)
		if ok && (len(data) == 0 || data[0] != ComChangeUser) {
			t.Fatal("ok without COM_CHANGE_USER")
		}
		if r.Caps != caps {
			t.Fatalf("caps %#x, want %#x", r.Caps, caps)
		}
	})
}

func FuzzParseAttrs(f *testing.F) {
	inner, _, _ := ReadLenEncString(attrBlock(testAttrs), 0)
	f.Add(inner)
	f.Add(append(lenencStr(lenencStr(nil, "k"), "v"), 0x05, 'a'))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		attrs, ok := ParseAttrs(data)
		if !ok {
			return
		}
		enc, _, _ := ReadLenEncString(attrBlock(attrs), 0)
		back, ok := ParseAttrs(enc)
		if !ok || !reflect.DeepEqual(back, attrs) {
			t.Fatalf("round trip: %v -> %v", attrs, back)
		}
	})
}
