package protocol

import (
	"testing"
)

const trackCaps = ClientProtocol41 | ClientTransactions | ClientSessionTrack

// stateOKHead is an OK packet up to its warnings, with
// SERVER_SESSION_STATE_CHANGED set: the caller appends info and state.
func stateOKHead() []byte { return []byte{0x00, 0, 0, 0x00, 0x40, 0, 0} }

func TestParseOK(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		caps uint64
		want OKPacket
		ok   bool
	}{
		{"minimal 4.1", okPacket(okOpts{affected: 2, id: 300, status: ServerStatusAutocommit, warns: 1}), trackCaps,
			OKPacket{AffectedRows: 2, LastInsertID: 300, Status: ServerStatusAutocommit, Warnings: 1}, true},
		{"info only", okPacket(okOpts{info: "Rows matched: 1"}), trackCaps, OKPacket{}, true},
		{"info without session track", append(ok(0), "Rows matched: 1"...), ClientProtocol41, OKPacket{}, true},
		{"schema", okPacket(okOpts{schema: "crm"}), trackCaps,
			OKPacket{Status: ServerSessionStateChanged, Schema: "crm", SchemaChanged: true}, true},
		{"sysvar then schema", okPacket(okOpts{sysvar: "autocommit", schema: "x"}), trackCaps,
			OKPacket{Status: ServerSessionStateChanged, Schema: "x", SchemaChanged: true}, true},
		{"sysvar only", okPacket(okOpts{sysvar: "autocommit"}), trackCaps,
			OKPacket{Status: ServerSessionStateChanged}, true},
		{"state ignored without session track caps", okPacket(okOpts{schema: "crm"}), ClientProtocol41,
			OKPacket{Status: ServerSessionStateChanged}, true},
		{"0xFE terminator", okEOF(ServerMoreResultsExists), trackCaps, OKPacket{Status: ServerMoreResultsExists}, true},
		{"transactions only: status, no warnings", []byte{0, 1, 2, 0x08, 0x00}, ClientTransactions,
			OKPacket{AffectedRows: 1, LastInsertID: 2, Status: ServerMoreResultsExists}, true},
		{"pre-4.1", []byte{0, 1, 2}, 0, OKPacket{AffectedRows: 1, LastInsertID: 2}, true},
		{"truncated state", append(stateOKHead(), 0x00, 0x10, 0x01), trackCaps,
			OKPacket{Status: ServerSessionStateChanged}, true},
		{"bad entry inside state", append(stateOKHead(), 0x00, 0x03, 0x01, 0x05, 'a'), trackCaps,
			OKPacket{Status: ServerSessionStateChanged}, true},
		{"wrong header", []byte{0x01, 0, 0, 0, 0, 0, 0}, trackCaps, OKPacket{}, false},
		{"ERR header", errPacket(1, "", ""), trackCaps, OKPacket{}, false},
		{"empty", nil, trackCaps, OKPacket{}, false},
		{"no status", []byte{0, 0, 0, 2}, trackCaps, OKPacket{}, false},
		{"no warnings", []byte{0, 0, 0, 2, 0, 1}, trackCaps, OKPacket{}, false},
		{"bad affected", []byte{0, 0xfb, 0, 0, 0, 0, 0}, trackCaps, OKPacket{}, false},
		{"bad insert id", []byte{0, 0, 0xff, 0, 0, 0, 0}, trackCaps, OKPacket{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseOK(tt.data, tt.caps)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseOK = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseERR(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want ERRPacket
		ok   bool
	}{
		{"with state", errPacket(1045, "28000", "Access denied"), ERRPacket{1045, "28000", "Access denied"}, true},
		{"without state", errPacket(1040, "", "Too many connections"), ERRPacket{1040, "", "Too many connections"}, true},
		{"code only", []byte{0xff, 0x11, 0x04}, ERRPacket{Code: 1041}, true},
		{"short state marker", []byte{0xff, 0x11, 0x04, '#', 'H', 'Y'}, ERRPacket{Code: 1041, Message: "#HY"}, true},
		{"no code", []byte{0xff, 0x01}, ERRPacket{}, false},
		{"not ERR", []byte{0x00, 0x01, 0x02}, ERRPacket{}, false},
		{"empty", nil, ERRPacket{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseERR(tt.data)
			if ok != tt.ok || (ok && got != tt.want) {
				t.Errorf("ParseERR = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestAppendERR(t *testing.T) {
	// A SQL state that is not 5 bytes is left out rather than corrupting
	// the packet.
	if got, _ := ParseERR(AppendERR(nil, 1927, "70100", "killed")); got != (ERRPacket{1927, "70100", "killed"}) {
		t.Errorf("round trip = %+v", got)
	}
	if got, _ := ParseERR(AppendERR(nil, 1927, "701", "killed")); got != (ERRPacket{1927, "", "killed"}) {
		t.Errorf("bad state = %+v", got)
	}
}

func TestIsProgress(t *testing.T) {
	tests := []struct {
		data []byte
		want bool
	}{
		{progress(1, 2, 500, "copy"), true},
		{[]byte{0xff, 0xff, 0xff}, true},
		{errPacket(1045, "28000", "x"), false},
		{[]byte{0xff, 0xff}, false},
		{[]byte{0xfe, 0xff, 0xff}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsProgress(tt.data); got != tt.want {
			t.Errorf("IsProgress(% x) = %v", tt.data, got)
		}
	}
}

func TestEOFStatus(t *testing.T) {
	if s, ok := EOFStatus(eof(ServerStatusLastRowSent | ServerStatusAutocommit)); !ok || s != ServerStatusLastRowSent|ServerStatusAutocommit {
		t.Errorf("EOFStatus = %#x %v", s, ok)
	}
	for _, d := range [][]byte{nil, {0xfe}, {0xfe, 0, 0, 1}, {0x00, 0, 0, 2, 0}} {
		if _, ok := EOFStatus(d); ok {
			t.Errorf("EOFStatus(% x) ok", d)
		}
	}
}

func TestCommandAndPhaseNames(t *testing.T) {
	for c, want := range map[byte]string{
		ComSleep: "COM_SLEEP", ComQuery: "COM_QUERY", ComResetConnection: "COM_RESET_CONNECTION",
		ComStmtBulkExecute: "COM_STMT_BULK_EXECUTE", 0x20: "COM_UNKNOWN", 0xee: "COM_UNKNOWN",
	} {
		if got := CommandName(c); got != want {
			t.Errorf("CommandName(%#x) = %q, want %q", c, got, want)
		}
	}
	for p, want := range map[Phase]string{PhaseConnect: "connect", PhaseIdle: "idle", PhaseBinlog: "binlog", 99: "unknown"} {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d) = %q, want %q", p, got, want)
		}
	}
	if ClientToServer.String() != "client_to_server" || ServerToClient.String() != "server_to_client" {
		t.Error("Direction names")
	}
}

// Every decoder survives every truncation of a valid input.
func TestDecodersOnTruncations(t *testing.T) {
	inputs := [][]byte{
		greeting(1, serverCaps),
		handshakeResponse(clientOpts(ClientDeprecateEOF | MariaDBClientCacheMetadata)),
		changeUser(baseClientCaps, "bob", "crm", "client_ed25519", newAttrs),
		okPacket(okOpts{sysvar: "autocommit", schema: "crm", info: "x"}),
		errPacket(1045, "28000", "denied"),
		attrBlock(testAttrs),
	}
	for _, in := range inputs {
		for n := 0; n <= len(in); n++ {
			d := in[:n:n]
			ParseGreeting(d)
			ParseHandshakeResponse(d)
			ParseChangeUser(d, baseClientCaps)
			ParseChangeUser(d, 0)
			ParseOK(d, trackCaps)
			ParseERR(d)
			ParseAttrs(d)
			IsProgress(d)
			EOFStatus(d)
			ReadLenEncInt(d, n/2)
			ReadLenEncString(d, n/2)
			ReadNulString(d, n/2)
			MaskGreeting(append([]byte(nil), d...), ^uint64(0))
			MaskHandshakeResponse(append([]byte(nil), d...), ^uint64(0))
		}
	}
}
