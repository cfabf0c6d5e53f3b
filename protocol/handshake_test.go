package protocol

import (
	"bytes"
	"reflect"
	"testing"
)

// greetingOffsets returns where greeting() puts the three capability fields.
func greetingOffsets() (lo, hi, ext int) {
	lo = 1 + len("5.5.5-10.11.6-MariaDB-log") + 1 + 4 + 8 + 1
	hi = lo + 2 + 1 + 2
	ext = hi + 2 + 1 + 6
	return lo, hi, ext
}

func TestParseGreeting(t *testing.T) {
	g, ok := ParseGreeting(greeting(0xdeadbeef, serverCaps))
	if !ok {
		t.Fatal("ParseGreeting failed")
	}
	eq(t, "ConnectionID", g.ConnectionID, uint32(0xdeadbeef))
	eq(t, "ServerVersion", g.ServerVersion, "5.5.5-10.11.6-MariaDB-log")
	eq(t, "Caps", g.Caps, serverCaps)
	eq(t, "Charset", g.Charset, byte(45))
	eq(t, "Status", g.Status, ServerStatusAutocommit)
	eq(t, "AuthPlugin", g.AuthPlugin, "mysql_native_password")

	// A MySQL server (CLIENT_MYSQL set): the last filler bytes are not caps.
	my := greeting(5, serverCaps|ClientMySQL)
	_, _, ext := greetingOffsets()
	copy(my[ext:], []byte{0xff, 0xff, 0xff, 0xff})
	g, ok = ParseGreeting(my)
	if !ok || g.Caps != (serverCaps|ClientMySQL)&0xffffffff {
		t.Errorf("MySQL greeting caps = %#x, %v", g.Caps, ok)
	}

	// Plugin name without its trailing NUL.
	noNul := greeting(1, serverCaps)
	g, ok = ParseGreeting(noNul[:len(noNul)-1])
	if !ok || g.AuthPlugin != "mysql_native_password" {
		t.Errorf("no-NUL plugin = %q, %v", g.AuthPlugin, ok)
	}

	// An auth-data length under 21 still means 13 bytes of scramble part 2.
	short := greeting(3, serverCaps)
	_, hiPos, _ := greetingOffsets()
	short[hiPos+2] = 0
	g, ok = ParseGreeting(short)
	if !ok || g.AuthPlugin != "mysql_native_password" {
		t.Errorf("auth length 0: plugin %q, %v", g.AuthPlugin, ok)
	}

	// Pre-4.1: stops after the low caps.
	lo, _, _ := greetingOffsets()
	g, ok = ParseGreeting(greeting(2, serverCaps)[:lo+2])
	if !ok || g.Caps != serverCaps&0xffff {
		t.Errorf("pre-4.1 greeting = %#x, %v", g.Caps, ok)
	}

	for _, bad := range [][]byte{nil, {0x09}, {0x0a, 'x'}, {0x0a, 0, 1, 2}, errPacket(1040, "", "x")} {
		if _, ok := ParseGreeting(bad); ok {
			t.Errorf("ParseGreeting(% x) ok", bad)
		}
	}
}

func TestMaskGreeting(t *testing.T) {
	mask := UnfollowableCaps | MariaDBClientProgress | ClientProgressObsolete
	orig := greeting(77, serverCaps|ClientZstdCompression|MariaDBClientBulkUnitResults)
	data := append([]byte(nil), orig...)
	g, ok := MaskGreeting(data, mask)
	if !ok {
		t.Fatal("MaskGreeting failed")
	}
	want := (serverCaps | ClientZstdCompression | MariaDBClientBulkUnitResults) &^ mask
	eq(t, "returned Caps", g.Caps, want)
	g2, ok := ParseGreeting(data)
	if !ok || g2.Caps != want {
		t.Errorf("reparsed Caps = %#x, want %#x", g2.Caps, want)
	}
	eq(t, "ConnectionID", g2.ConnectionID, uint32(77))
	lo, hi, ext := greetingOffsets()
	changed := map[int]bool{}
	for i := range data {
		if data[i] != orig[i] {
			changed[i] = true
		}
	}
	for i := range changed {
		if !(i >= lo && i < lo+2 || i >= hi && i < hi+2 || i >= ext && i < ext+4) {
			t.Errorf("byte %d changed: %#x -> %#x", i, orig[i], data[i])
		}
	}
	eq(t, "caps low", data[lo:lo+2], le16(nil, uint16(want)))
	eq(t, "caps high", data[hi:hi+2], le16(nil, uint16(want>>16)))
	eq(t, "ext caps", data[ext:ext+4], le32(nil, uint32(want>>32)))
	if len(changed) == 0 {
		t.Error("nothing masked")
	}

	// A MySQL greeting has no extended caps: those bytes stay.
	my := greeting(5, serverCaps|ClientMySQL)
	copy(my[ext:], []byte{0xff, 0xff, 0xff, 0xff})
	before := append([]byte(nil), my...)
	MaskGreeting(my, MariaDBClientProgress|MariaDBClientCacheMetadata)
	if !bytes.Equal(my, before) {
		t.Errorf("MySQL greeting filler changed")
	}

	// Not a greeting: untouched.
	bad := errPacket(1040, "08004", "Too many connections")
	before = append([]byte(nil), bad...)
	if _, ok := MaskGreeting(bad, ^uint64(0)); ok || !bytes.Equal(bad, before) {
		t.Errorf("MaskGreeting on ERR: ok=%v, changed=%v", ok, !bytes.Equal(bad, before))
	}
}

func TestParseHandshakeResponse(t *testing.T) {
	o := clientOpts(ClientDeprecateEOF | MariaDBClientCacheMetadata)
	r, ok := ParseHandshakeResponse(handshakeResponse(o))
	if !ok {
		t.Fatal("ParseHandshakeResponse failed")
	}
	eq(t, "response", r, HandshakeResponse{Caps: o.caps, Charset: 45, User: "app", DB: "shop",
		AuthPlugin: "mysql_native_password", Attrs: testAttrs})

	// The older auth encodings, no db, no attrs.
	for _, caps := range []uint64{
		ClientProtocol41 | ClientSecureConnection | ClientPluginAuth,
		ClientProtocol41,
	} {
		o := hsOpts{caps: caps, user: "u", authResponse: []byte("pw"), plugin: "p"}
		r, ok := ParseHandshakeResponse(handshakeResponse(o))
		if !ok || r.User != "u" || r.DB != "" {
			t.Errorf("caps %#x: %+v, %v", caps, r, ok)
		}
	}

	// MySQL client: offset 28 is filler, not caps.
	my := handshakeResponse(clientOpts(ClientMySQL))
	copy(my[28:], []byte{0xff, 0xff, 0xff, 0xff})
	if r, _ := ParseHandshakeResponse(my); r.Caps>>32 != 0 {
		t.Errorf("MySQL client got extended caps %#x", r.Caps)
	}

	// SSLRequest.
	r, ok = ParseHandshakeResponse(sslRequest(baseClientCaps | ClientSSL | MariaDBClientProgress))
	if !ok || !r.SSLRequest || r.Caps != baseClientCaps|ClientSSL|MariaDBClientProgress {
		t.Errorf("SSLRequest: %+v, %v", r, ok)
	}
	// 32 bytes without CLIENT_SSL is a truncated response, not an SSLRequest.
	if r, ok := ParseHandshakeResponse(sslRequest(baseClientCaps)); ok || r.SSLRequest {
		t.Errorf("32 bytes without SSL: %+v, %v", r, ok)
	}

	// Pre-4.1 response: caps(2), max packet(3), user, auth, db.
	old := append(le16(nil, uint16(ClientConnectWithDB)), 0, 0, 1)
	old = nulStr(nulStr(nulStr(old, "root"), "scramble"), "mysql")
	r, ok = ParseHandshakeResponse(old)
	if !ok || r.User != "root" || r.DB != "mysql" {
		t.Errorf("pre-4.1: %+v, %v", r, ok)
	}

	// Attributes cut short: what decoded is kept, ok is false.
	full := handshakeResponse(clientOpts(0))
	if _, ok := ParseHandshakeResponse(full[:len(full)-3]); ok {
		t.Error("truncated attrs: ok")
	}
	for _, bad := range [][]byte{nil, {0x00}, le32(nil, uint32(ClientProtocol41)), {0, 0, 0, 0, 0, 'u'}} {
		if _, ok := ParseHandshakeResponse(bad); ok {
			t.Errorf("ParseHandshakeResponse(% x) ok", bad)
		}
	}
}

func TestMaskHandshakeResponse(t *testing.T) {
	caps := baseClientCaps | ClientCompress | ClientZstdCompression | ClientQueryAttributes |
		MariaDBClientCacheMetadata | MariaDBClientBulkUnitResults
	orig := handshakeResponse(clientOpts(caps))
	data := append([]byte(nil), orig...)
	MaskHandshakeResponse(data, UnfollowableCaps)
	r, ok := ParseHandshakeResponse(data)
	if !ok {
		t.Fatal("masked response no longer parses")
	}
	eq(t, "Caps", r.Caps, caps&^UnfollowableCaps)
	eq(t, "User", r.User, "app")
	eq(t, "Attrs", r.Attrs, testAttrs)
	for i := range data {
		if data[i] != orig[i] && !(i < 4 || i >= 28 && i < 32) {
			t.Errorf("byte %d changed", i)
		}
	}

	// A MySQL client keeps its filler even when the mask clears CLIENT_MYSQL.
	my := handshakeResponse(clientOpts(ClientMySQL))
	copy(my[28:], []byte{0xff, 0xff, 0xff, 0xff})
	MaskHandshakeResponse(my, ClientMySQL|MariaDBClientProgress)
	eq(t, "MySQL filler", my[28:32], []byte{0xff, 0xff, 0xff, 0xff})
	eq(t, "CLIENT_MYSQL cleared", my[0]&byte(ClientMySQL), byte(0))

	// SSLRequest: the same offsets.
	ssl := sslRequest(baseClientCaps | ClientSSL | ClientCompress | MariaDBClientBulkUnitResults)
	MaskHandshakeResponse(ssl, ClientCompress|MariaDBClientBulkUnitResults)
	if r, _ := ParseHandshakeResponse(ssl); r.Caps != baseClientCaps|ClientSSL {
		t.Errorf("SSLRequest caps = %#x", r.Caps)
	}

	// Pre-4.1: only the two-byte caps.
	old := append(le16(nil, uint16(ClientCompress|ClientConnectWithDB)), 0xff, 0xff, 0xff)
	old = nulStr(nulStr(old, "root"), "x")
	MaskHandshakeResponse(old, ClientCompress|ClientMySQL<<16)
	eq(t, "pre-4.1 caps", old[:2], le16(nil, uint16(ClientConnectWithDB)))
	eq(t, "pre-4.1 rest", old[2:5], []byte{0xff, 0xff, 0xff})

	for _, short := range [][]byte{nil, {0xff}, {0xff, 0xff, 0xff}} {
		before := append([]byte(nil), short...)
		MaskHandshakeResponse(short, ^uint64(0))
		if !bytes.Equal(short, before) {
			t.Errorf("short input % x changed", before)
		}
	}
}

func TestParseChangeUser(t *testing.T) {
	caps := baseClientCaps
	r, ok := ParseChangeUser(changeUser(caps, "bob", "crm", "client_ed25519", newAttrs), caps)
	if !ok {
		t.Fatal("ParseChangeUser failed")
	}
	eq(t, "parsed", r, HandshakeResponse{Caps: caps, User: "bob", DB: "crm", AuthPlugin: "client_ed25519", Attrs: newAttrs})

	// Without CLIENT_SECURE_CONNECTION the auth response is NUL-terminated.
	old := ClientProtocol41
	r, ok = ParseChangeUser(changeUser(old, "bob", "crm", "", nil), old)
	if !ok || r.User != "bob" || r.DB != "crm" {
		t.Errorf("old caps: %+v, %v", r, ok)
	}
	// Old clients end after the auth response.
	short := append(nulStr([]byte{ComChangeUser}, "bob"), 0)
	if r, ok := ParseChangeUser(short, caps); !ok || r.User != "bob" {
		t.Errorf("short: %+v, %v", r, ok)
	}
	for _, bad := range [][]byte{nil, {ComQuery, 'a', 0}, {ComChangeUser, 'a'}, {ComChangeUser, 'a', 0, 9, 1}} {
		if _, ok := ParseChangeUser(bad, caps); ok {
			t.Errorf("ParseChangeUser(% x) ok", bad)
		}
	}
}

func TestParseAttrs(t *testing.T) {
	block := attrBlock(testAttrs)
	inner, _, _ := ReadLenEncString(block, 0)
	got, ok := ParseAttrs(inner)
	if !ok || !reflect.DeepEqual(got, testAttrs) {
		t.Errorf("ParseAttrs = %v, %v", got, ok)
	}
	if got, ok := ParseAttrs(nil); !ok || got != nil {
		t.Errorf("empty = %v, %v", got, ok)
	}
	// A key with no value: the complete pairs before it are returned.
	cut := append(lenencStr(lenencStr(nil, "k"), "v"), lenencStr(nil, "dangling")...)
	if got, ok := ParseAttrs(cut); ok || !reflect.DeepEqual(got, []Attr{{"k", "v"}}) {
		t.Errorf("dangling key = %v, %v", got, ok)
	}
	if _, ok := ParseAttrs([]byte{0x05, 'a'}); ok {
		t.Error("short key ok")
	}
}

func TestCapsSetters(t *testing.T) {
	g := greeting(7, serverCaps&^ClientSSL)
	OfferGreeting(g, uint32(ClientSSL))
	if pg, ok := ParseGreeting(g); !ok || pg.Caps != serverCaps|ClientSSL {
		t.Errorf("offered caps %#x, want %#x", pg.Caps, serverCaps|ClientSSL)
	}
	resp := handshakeResponse(hsOpts{caps: baseClientCaps, user: "app"})
	req := SSLRequestFrom(resp)
	r, ok := ParseHandshakeResponse(req)
	if !ok || !r.SSLRequest || r.Caps != baseClientCaps|ClientSSL {
		t.Errorf("SSLRequest %+v (ok %v), want caps %#x", r, ok, baseClientCaps|ClientSSL)
	}
	AskHandshakeResponse(resp, uint32(ClientSSL))
	if r, _ := ParseHandshakeResponse(resp); r.Caps != baseClientCaps|ClientSSL || r.User != "app" {
		t.Errorf("response %+v", r)
	}
}
