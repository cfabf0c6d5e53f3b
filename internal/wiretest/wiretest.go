// Package wiretest builds the packets of a MySQL/MariaDB conversation by
// hand, for tests that need one without a server: a MariaDB 10.11 greeting,
// a client's handshake response, OK packets, column definitions and rows.
// The payloads are those of the real thing; Frame adds the header.
package wiretest

import (
	"bytes"
	"encoding/binary"

	"github.com/abortscope/abortscope/protocol"
)

// Version is the server version the greeting announces.
const Version = "5.5.5-10.11.19-MariaDB"

// ServerCaps is what MariaDB 10.11 offers: CLIENT_MYSQL clear, so the
// extended capabilities travel in the greeting's last four filler bytes.
const ServerCaps = protocol.ClientFoundRows | protocol.ClientLongFlag | protocol.ClientConnectWithDB |
	protocol.ClientNoSchema | protocol.ClientCompress | protocol.ClientODBC | protocol.ClientLocalFiles |
	protocol.ClientIgnoreSpace | protocol.ClientProtocol41 | protocol.ClientInteractive | protocol.ClientSSL |
	protocol.ClientIgnoreSigpipe | protocol.ClientTransactions | protocol.ClientReserved |
	protocol.ClientSecureConnection | protocol.ClientMultiStatements | protocol.ClientMultiResults |
	protocol.ClientPSMultiResults | protocol.ClientPluginAuth | protocol.ClientConnectAttrs |
	protocol.ClientPluginAuthLenencData | protocol.ClientCanHandleExpiredPasswords |
	protocol.ClientSessionTrack | protocol.ClientDeprecateEOF | protocol.ClientProgressObsolete |
	protocol.ClientSSLVerifyServerCert | protocol.ClientRememberOptions |
	protocol.MariaDBClientProgress | protocol.MariaDBClientStmtBulkOps |
	protocol.MariaDBClientExtendedMetadata | protocol.MariaDBClientCacheMetadata

// ClientCaps is what a libmariadb-like client asks for.
const ClientCaps = protocol.ClientLongFlag | protocol.ClientConnectWithDB | protocol.ClientLocalFiles |
	protocol.ClientProtocol41 | protocol.ClientTransactions | protocol.ClientSecureConnection |
	protocol.ClientMultiStatements | protocol.ClientMultiResults | protocol.ClientPSMultiResults |
	protocol.ClientPluginAuth | protocol.ClientConnectAttrs | protocol.ClientPluginAuthLenencData |
	protocol.ClientSessionTrack | protocol.ClientDeprecateEOF | protocol.MariaDBClientProgress

// Offsets inside the greeting payload built by Greeting.
const (
	GreetCapLow  = 1 + len(Version) + 1 + 4 + 8 + 1 // caps bits 0-15
	GreetCapHigh = GreetCapLow + 2 + 1 + 2          // caps bits 16-31
	GreetExtCaps = GreetCapHigh + 2 + 1 + 6         // MariaDB caps bits 32-63
)

// Greeting builds a MariaDB 10.11 HandshakeV10 payload offering caps.
func Greeting(connID uint32, caps uint64) []byte {
	b := []byte{0x0a}
	b = append(b, Version...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, connID)
	b = append(b, "Fq2~h`J!"...) // scramble, part 1
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps&0xffff))
	b = append(b, 45) // utf8mb4_general_ci
	b = binary.LittleEndian.AppendUint16(b, protocol.ServerStatusAutocommit)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16&0xffff))
	b = append(b, 21)               // auth data length: 8 + 12 + NUL
	b = append(b, 0, 0, 0, 0, 0, 0) // filler
	b = binary.LittleEndian.AppendUint32(b, uint32(caps>>32&0xffffffff))
	b = append(b, "S9<d}1*Q(Hk6"...) // scramble, part 2
	b = append(b, 0)
	b = append(b, "mysql_native_password"...)
	return append(b, 0)
}

// Login is what a handshake response says.
type Login struct {
	User, DB string
	Attrs    []protocol.Attr
	Caps     uint64 // if zero, ClientCaps
}

// HandshakeResponse builds a HandshakeResponse41 payload (a
// mysql_native_password scramble of 0xa5 bytes).
func HandshakeResponse(l Login) []byte {
	caps := l.Caps
	if caps == 0 {
		caps = ClientCaps
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(caps))
	b = binary.LittleEndian.AppendUint32(b, 16<<20) // max packet
	b = append(b, 45)
	b = append(b, make([]byte, 19)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(caps>>32))
	b = append(append(b, l.User...), 0)
	b = append(b, 20) // auth response, lenenc
	b = append(b, bytes.Repeat([]byte{0xa5}, 20)...)
	if caps&protocol.ClientConnectWithDB != 0 {
		b = append(append(b, l.DB...), 0)
	}
	b = append(append(b, "mysql_native_password"...), 0)
	var a []byte
	for _, kv := range l.Attrs {
		a = protocol.PutLenEncInt(a, uint64(len(kv.Key)))
		a = append(a, kv.Key...)
		a = protocol.PutLenEncInt(a, uint64(len(kv.Value)))
		a = append(a, kv.Value...)
	}
	b = protocol.PutLenEncInt(b, uint64(len(a)))
	return append(b, a...)
}

// SSLRequest is the 32-byte packet a client sends to ask for TLS.
func SSLRequest(caps uint64) []byte {
	return HandshakeResponse(Login{Caps: caps | protocol.ClientSSL})[:32]
}

// OK is an OK packet (header 0x00, or 0xFE as a DEPRECATE_EOF result
// terminator) with no rows affected and autocommit set.
func OK(header byte) []byte {
	return []byte{header, 0, 0, byte(protocol.ServerStatusAutocommit), 0, 0, 0}
}

// ColumnDef is a ColumnDefinition41 for a VARCHAR column, in the layout
// the negotiated caps ask for.
func ColumnDef(name string, caps uint64) []byte {
	var b []byte
	for _, v := range []string{"def", "", "", "", name, ""} {
		b = protocol.PutLenEncInt(b, uint64(len(v)))
		b = append(b, v...)
	}
	if caps&protocol.MariaDBClientExtendedMetadata != 0 {
		b = protocol.PutLenEncInt(b, 0) // no extended type info
	}
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, 45)
	b = binary.LittleEndian.AppendUint32(b, 1<<20)
	b = append(b, 0xfd, 1, 0, 39, 0, 0) // VAR_STRING, NOT_NULL, decimals 39, filler
	return b
}

// TextRow is a one-column text row of size bytes of 'x'.
func TextRow(size int) []byte {
	return append(protocol.PutLenEncInt(nil, uint64(size)), bytes.Repeat([]byte{'x'}, size)...)
}

// Frame frames payloads as consecutive packets from sequence id seq.
func Frame(seq byte, payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = protocol.AppendPacket(b, seq, p)
		seq++
	}
	return b
}
