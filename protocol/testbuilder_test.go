package protocol

// Hand-built frames for the tests: payload builders for every packet the
// tracker meets, and a conv that frames them with the sequence ids a real
// exchange uses (reset at each command, shared by both directions, +1 per
// physical packet, wrapping 255 -> 0, logical packets of 16 MiB and more
// split into MaxPacketLen chunks plus a shorter, possibly empty, last one).

import "bytes"

// Capabilities of a MariaDB 10.11 server: CLIENT_MYSQL clear, so its
// extended capabilities travel in the greeting's last four filler bytes.
const serverCaps = ClientFoundRows | ClientLongFlag | ClientConnectWithDB |
	ClientNoSchema | ClientCompress | ClientODBC | ClientLocalFiles |
	ClientIgnoreSpace | ClientProtocol41 | ClientInteractive | ClientSSL |
	ClientIgnoreSigpipe | ClientTransactions | ClientReserved |
	ClientSecureConnection | ClientMultiStatements | ClientMultiResults |
	ClientPSMultiResults | ClientPluginAuth | ClientConnectAttrs |
	ClientPluginAuthLenencData | ClientCanHandleExpiredPasswords |
	ClientSessionTrack | ClientDeprecateEOF | ClientProgressObsolete |
	ClientSSLVerifyServerCert | ClientRememberOptions |
	MariaDBClientProgress | MariaDBClientStmtBulkOps |
	MariaDBClientExtendedMetadata | MariaDBClientCacheMetadata

// baseClientCaps is what a libmariadb-like client asks for, without the
// response-shaping bits the tests vary (DEPRECATE_EOF, CACHE_METADATA).
const baseClientCaps = ClientLongFlag | ClientConnectWithDB | ClientLocalFiles |
	ClientProtocol41 | ClientTransactions | ClientSecureConnection |
	ClientMultiStatements | ClientMultiResults | ClientPSMultiResults |
	ClientPluginAuth | ClientConnectAttrs | ClientPluginAuthLenencData |
	ClientSessionTrack

// conv frames logical packets with the sequence ids of one exchange.
type conv struct{ seq byte }

// cmd frames a client command: the sequence restarts at 0.
func (c *conv) cmd(payload []byte) []byte {
	c.seq = 0
	return c.pk(payload)
}

// pk frames the next logical packet of the exchange, from either side.
func (c *conv) pk(payload []byte) []byte {
	var b []byte
	b, c.seq = frameLogical(nil, c.seq, payload)
	return b
}

// pks frames several logical packets back to back.
func (c *conv) pks(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = append(b, c.pk(p)...)
	}
	return b
}

// frameLogical appends payload as one logical packet starting at seq and
// returns the sequence id after it. A payload of n*MaxPacketLen bytes ends
// with an empty packet, as my_net_write sends it.
func frameLogical(b []byte, seq byte, payload []byte) ([]byte, byte) {
	for len(payload) >= MaxPacketLen {
		b = append(b, 0xff, 0xff, 0xff, seq)
		b = append(b, payload[:MaxPacketLen]...)
		payload = payload[MaxPacketLen:]
		seq++
	}
	b = AppendPacket(b, seq, payload)
	return b, seq + 1
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func le16(b []byte, v uint16) []byte { return append(b, byte(v), byte(v>>8)) }
func le32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
func lenencStr(b []byte, s string) []byte { return append(PutLenEncInt(b, uint64(len(s))), s...) }
func nulStr(b []byte, s string) []byte    { return append(append(b, s...), 0) }

// greeting builds a MariaDB 10.11-like HandshakeV10 payload.
func greeting(connID uint32, caps uint64) []byte {
	b := []byte{headerGreeting}
	b = nulStr(b, "5.5.5-10.11.6-MariaDB-log")
	b = le32(b, connID)
	b = append(b, "abcdefgh"...) // scramble part 1
	b = append(b, 0)
	b = le16(b, uint16(caps))
	b = append(b, 45) // utf8mb4_general_ci
	b = le16(b, ServerStatusAutocommit)
	b = le16(b, uint16(caps>>16))
	b = append(b, 21)               // auth data length: 8 + 12 + NUL
	b = append(b, 0, 0, 0, 0, 0, 0) // filler
	if caps&ClientMySQL == 0 {
		b = le32(b, uint32(caps>>32))
	} else {
		b = le32(b, 0)
	}
	b = nulStr(b, "ijklmnopqrst") // scramble part 2
	return nulStr(b, "mysql_native_password")
}

// hsOpts describes a HandshakeResponse41.
type hsOpts struct {
	caps         uint64
	user, db     string
	plugin       string
	attrs        []Attr
	authResponse []byte
}

func attrBlock(attrs []Attr) []byte {
	var a []byte
	for _, kv := range attrs {
		a = lenencStr(a, kv.Key)
		a = lenencStr(a, kv.Value)
	}
	return lenencStr(nil, string(a))
}

// handshakeResponse builds a HandshakeResponse41 with MariaDB extended caps
// at offset 28 when CLIENT_MYSQL is clear.
func handshakeResponse(o hsOpts) []byte {
	b := le32(nil, uint32(o.caps))
	b = le32(b, 1<<24) // max packet
	b = append(b, 45)
	b = append(b, make([]byte, 19)...)
	if o.caps&ClientMySQL == 0 {
		b = le32(b, uint32(o.caps>>32))
	} else {
		b = le32(b, 0)
	}
	b = nulStr(b, o.user)
	switch {
	case o.caps&ClientPluginAuthLenencData != 0:
		b = lenencStr(b, string(o.authResponse))
	case o.caps&ClientSecureConnection != 0:
		b = append(b, byte(len(o.authResponse)))
		b = append(b, o.authResponse...)
	default:
		b = nulStr(b, string(o.authResponse))
	}
	if o.caps&ClientConnectWithDB != 0 {
		b = nulStr(b, o.db)
	}
	if o.caps&ClientPluginAuth != 0 {
		b = nulStr(b, o.plugin)
	}
	if o.caps&ClientConnectAttrs != 0 {
		b = append(b, attrBlock(o.attrs)...)
	}
	return b
}

// sslRequest is the 32-byte prefix a client sends before TLS.
func sslRequest(caps uint64) []byte { return handshakeResponse(hsOpts{caps: caps})[:32] }

// okOpts describes an OK packet.
type okOpts struct {
	header        byte // headerOK, or headerEOF for a DEPRECATE_EOF terminator
	affected, id  uint64
	status, warns uint16
	info          string
	schema        string // non-empty: a SESSION_TRACK_SCHEMA change
	sysvar        string // non-empty: a SESSION_TRACK_SYSTEM_VARIABLES entry first
}

// okPacket builds an OK payload for a connection that negotiated
// CLIENT_PROTOCOL_41 and CLIENT_SESSION_TRACK.
func okPacket(o okOpts) []byte {
	b := []byte{o.header}
	b = PutLenEncInt(b, o.affected)
	b = PutLenEncInt(b, o.id)
	status := o.status
	if o.schema != "" || o.sysvar != "" {
		status |= ServerSessionStateChanged
	}
	b = le16(b, status)
	b = le16(b, o.warns)
	if o.info == "" && status&ServerSessionStateChanged == 0 {
		return b
	}
	b = lenencStr(b, o.info)
	if status&ServerSessionStateChanged != 0 {
		var st []byte
		if o.sysvar != "" {
			st = append(st, SessionTrackSystemVariables)
			st = lenencStr(st, string(lenencStr(lenencStr(nil, o.sysvar), "ON")))
		}
		if o.schema != "" {
			st = append(st, SessionTrackSchema)
			st = lenencStr(st, string(lenencStr(nil, o.schema)))
		}
		b = lenencStr(b, string(st))
	}
	return b
}

func ok(status uint16) []byte { return okPacket(okOpts{status: status}) }

// okEOF is the OK packet with a 0xFE header that ends a result under
// CLIENT_DEPRECATE_EOF.
func okEOF(status uint16) []byte { return okPacket(okOpts{header: headerEOF, status: status}) }

func errPacket(code uint16, state, msg string) []byte { return AppendERR(nil, code, state, msg) }

func eof(status uint16) []byte { return le16(le16([]byte{headerEOF}, 0), status) }

// progress builds a MariaDB progress report: 0xFF, code 0xFFFF, then one
// string count, stage, max stage, progress*1000 (3 bytes), and a message.
func progress(stage, maxStage byte, permille uint32, msg string) []byte {
	b := []byte{headerERR, 0xff, 0xff, 1, stage, maxStage}
	b = append(b, byte(permille), byte(permille>>8), byte(permille>>16))
	return lenencStr(b, msg)
}

// colCount builds a column-count packet; metaFollows < 0 omits the MariaDB
// CACHE_METADATA byte.
func colCount(n uint64, metaFollows int) []byte {
	b := PutLenEncInt(nil, n)
	if metaFollows >= 0 {
		b = append(b, byte(metaFollows))
	}
	return b
}

// coldef builds a ColumnDefinition41 for a VARCHAR column.
func coldef(name string) []byte {
	b := lenencStr(nil, "def")
	b = lenencStr(b, "test")
	b = lenencStr(b, "t")
	b = lenencStr(b, "t")
	b = lenencStr(b, name)
	b = lenencStr(b, name)
	b = append(b, 0x0c)
	b = le16(b, 45)
	b = le32(b, 1024)
	b = append(b, 0xfd) // MYSQL_TYPE_VAR_STRING
	b = le16(b, 0)
	return append(b, 0, 0, 0)
}

func coldefs(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = coldef(string(rune('a' + i%26)))
	}
	return out
}

// textRow builds a text-protocol row; a nil value is NULL (0xFB).
func textRow(vals ...[]byte) []byte {
	var b []byte
	for _, v := range vals {
		if v == nil {
			b = append(b, 0xfb)
			continue
		}
		b = lenencStr(b, string(v))
	}
	return b
}

// bigTextRow is a one-column text row of total payload length n (n >= 9):
// 0xFE, an 8-byte length, then n-9 bytes. Such a row starts with 0xFE like
// an EOF, but its packet is at least MaxPacketLen long.
func bigTextRow(n int) []byte {
	b := make([]byte, n)
	b[0] = 0xfe
	v := uint64(n - 9)
	for i := 0; i < 8; i++ {
		b[1+i] = byte(v >> (8 * i))
	}
	for i := 9; i < n; i++ {
		b[i] = 'a'
	}
	return b
}

// binaryRow builds a binary-protocol row of INT columns: 0x00, the NULL
// bitmap (offset 2), then 4 bytes per non-NULL value.
func binaryRow(vals ...*int32) []byte {
	b := []byte{0x00}
	bm := make([]byte, (len(vals)+9)/8)
	var data []byte
	for i, v := range vals {
		if v == nil {
			bm[(i+2)/8] |= 1 << ((i + 2) % 8)
			continue
		}
		data = le32(data, uint32(*v))
	}
	return append(append(b, bm...), data...)
}

func i32(v int32) *int32 { return &v }

// prepareOK builds the COM_STMT_PREPARE_OK header.
func prepareOK(stmtID uint32, cols, params uint16) []byte {
	b := le32([]byte{headerOK}, stmtID)
	b = le16(b, cols)
	b = le16(b, params)
	b = append(b, 0)
	return le16(b, 0)
}

func infileRequest(name string) []byte { return append([]byte{headerInfile}, name...) }

func authSwitch(plugin string, data []byte) []byte {
	return append(nulStr([]byte{headerEOF}, plugin), data...)
}

func authMore(data []byte) []byte { return append([]byte{headerAuthMore}, data...) }

// Client commands.

func comQuery(q string) []byte      { return append([]byte{ComQuery}, q...) }
func comInitDB(db string) []byte    { return append([]byte{ComInitDB}, db...) }
func comPrepare(q string) []byte    { return append([]byte{ComStmtPrepare}, q...) }
func comSimple(c byte) []byte       { return []byte{c} }
func comSetOption(op uint16) []byte { return le16([]byte{ComSetOption}, op) }
func comStmtClose(id uint32) []byte { return le32([]byte{ComStmtClose}, id) }
func comFieldList(table string) []byte {
	return nulStr([]byte{ComFieldList}, table) // wildcard omitted
}

// comExecute builds COM_STMT_EXECUTE with no parameters.
func comExecute(id uint32, flags byte) []byte {
	return le32(append(le32([]byte{ComStmtExecute}, id), flags), 1)
}

const cursorTypeReadOnly = 0x01

func comFetch(id, rows uint32) []byte { return le32(le32([]byte{ComStmtFetch}, id), rows) }

func comLongData(id uint32, param uint16, data string) []byte {
	return append(le16(le32([]byte{ComStmtSendLongData}, id), param), data...)
}

func comBinlogDump(serverID uint32) []byte {
	b := le32([]byte{ComBinlogDump}, 4) // binlog position
	b = le16(b, 0)                      // flags
	b = le32(b, serverID)
	return append(b, "mysql-bin.000001"...)
}

// binlogEvent is a replication event packet: 0x00 then a 19-byte v4 header
// and a body.
func binlogEvent(n int) []byte {
	b := make([]byte, 1+19+n)
	b[5] = 0x10 // XID_EVENT
	return b
}

// semiSyncAck is the 0xEF packet a semi-sync replica sends mid-stream.
func semiSyncAck(pos uint64) []byte {
	b := []byte{0xef}
	for i := 0; i < 8; i++ {
		b = append(b, byte(pos>>(8*i)))
	}
	return append(b, "mysql-bin.000001"...)
}

// changeUser builds COM_CHANGE_USER for the given negotiated caps.
func changeUser(caps uint64, user, db, plugin string, attrs []Attr) []byte {
	b := nulStr([]byte{ComChangeUser}, user)
	auth := []byte("0123456789abcdefghij")
	if caps&ClientSecureConnection != 0 {
		b = append(append(b, byte(len(auth))), auth...)
	} else {
		b = nulStr(b, string(auth))
	}
	b = nulStr(b, db)
	b = le16(b, 45)
	if caps&ClientPluginAuth != 0 {
		b = nulStr(b, plugin)
	}
	if caps&ClientConnectAttrs != 0 {
		b = append(b, attrBlock(attrs)...)
	}
	return b
}

// resultSet builds the server side of a text result set with ncols columns
// and the given rows, with or without CLIENT_DEPRECATE_EOF. status is put on
// the terminator.
func resultSet(c *conv, deprecateEOF bool, ncols int, rows [][]byte, status uint16) []byte {
	b := c.pk(colCount(uint64(ncols), -1))
	b = append(b, c.pks(coldefs(ncols)...)...)
	if !deprecateEOF {
		b = append(b, c.pk(eof(0))...)
	}
	b = append(b, c.pks(rows...)...)
	if deprecateEOF {
		return append(b, c.pk(okEOF(status))...)
	}
	return append(b, c.pk(eof(status))...)
}

// rowsOf builds n one-column text rows.
func rowsOf(n int) [][]byte {
	rows := make([][]byte, n)
	for i := range rows {
		rows[i] = textRow([]byte("row"), nil)
	}
	return rows
}
