// Package protocol is a passive, sans-I/O model of the MySQL/MariaDB
// client/server protocol as seen by a proxy in the middle: it is fed the bytes
// of each direction in whatever chunks they arrive, finds packet boundaries
// without copying payloads, and follows the conversation closely enough to
// know at every moment what phase the connection is in and who the client is.
//
// It never touches a socket and imports nothing else of abortscope.
package protocol

// Command bytes: the first payload byte of a packet the client sends with
// sequence id 0 in the command phase.
const (
	ComSleep            byte = 0x00 // COM_SLEEP
	ComQuit             byte = 0x01 // COM_QUIT
	ComInitDB           byte = 0x02 // COM_INIT_DB
	ComQuery            byte = 0x03 // COM_QUERY
	ComFieldList        byte = 0x04 // COM_FIELD_LIST
	ComCreateDB         byte = 0x05 // COM_CREATE_DB
	ComDropDB           byte = 0x06 // COM_DROP_DB
	ComRefresh          byte = 0x07 // COM_REFRESH
	ComShutdown         byte = 0x08 // COM_SHUTDOWN
	ComStatistics       byte = 0x09 // COM_STATISTICS
	ComProcessInfo      byte = 0x0a // COM_PROCESS_INFO
	ComConnect          byte = 0x0b // COM_CONNECT
	ComProcessKill      byte = 0x0c // COM_PROCESS_KILL
	ComDebug            byte = 0x0d // COM_DEBUG
	ComPing             byte = 0x0e // COM_PING
	ComTime             byte = 0x0f // COM_TIME
	ComDelayedInsert    byte = 0x10 // COM_DELAYED_INSERT
	ComChangeUser       byte = 0x11 // COM_CHANGE_USER
	ComBinlogDump       byte = 0x12 // COM_BINLOG_DUMP
	ComTableDump        byte = 0x13 // COM_TABLE_DUMP
	ComConnectOut       byte = 0x14 // COM_CONNECT_OUT
	ComRegisterSlave    byte = 0x15 // COM_REGISTER_SLAVE
	ComStmtPrepare      byte = 0x16 // COM_STMT_PREPARE
	ComStmtExecute      byte = 0x17 // COM_STMT_EXECUTE
	ComStmtSendLongData byte = 0x18 // COM_STMT_SEND_LONG_DATA
	ComStmtClose        byte = 0x19 // COM_STMT_CLOSE
	ComStmtReset        byte = 0x1a // COM_STMT_RESET
	ComSetOption        byte = 0x1b // COM_SET_OPTION
	ComStmtFetch        byte = 0x1c // COM_STMT_FETCH
	ComDaemon           byte = 0x1d // COM_DAEMON
	ComBinlogDumpGTID   byte = 0x1e // COM_BINLOG_DUMP_GTID
	ComResetConnection  byte = 0x1f // COM_RESET_CONNECTION
	ComStmtBulkExecute  byte = 0xfa // COM_STMT_BULK_EXECUTE (MariaDB)
)

var commandNames = [...]string{
	"COM_SLEEP", "COM_QUIT", "COM_INIT_DB", "COM_QUERY", "COM_FIELD_LIST",
	"COM_CREATE_DB", "COM_DROP_DB", "COM_REFRESH", "COM_SHUTDOWN",
	"COM_STATISTICS", "COM_PROCESS_INFO", "COM_CONNECT", "COM_PROCESS_KILL",
	"COM_DEBUG", "COM_PING", "COM_TIME", "COM_DELAYED_INSERT",
	"COM_CHANGE_USER", "COM_BINLOG_DUMP", "COM_TABLE_DUMP", "COM_CONNECT_OUT",
	"COM_REGISTER_SLAVE", "COM_STMT_PREPARE", "COM_STMT_EXECUTE",
	"COM_STMT_SEND_LONG_DATA", "COM_STMT_CLOSE", "COM_STMT_RESET",
	"COM_SET_OPTION", "COM_STMT_FETCH", "COM_DAEMON", "COM_BINLOG_DUMP_GTID",
	"COM_RESET_CONNECTION",
}

// CommandName returns the C name of a command byte, e.g. "COM_QUERY".
func CommandName(c byte) string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	if c == ComStmtBulkExecute {
		return "COM_STMT_BULK_EXECUTE"
	}
	return "COM_UNKNOWN"
}

// Capability flags. The low 32 bits travel in the greeting and handshake
// response as the MySQL capability word; MariaDB's extended capabilities
// (bits 32 and up) travel separately, in the greeting's last four filler bytes
// and at offset 28 of the handshake response, and only when CLIENT_MYSQL
// (bit 0) is clear.
const (
	ClientMySQL                     uint64 = 1 << 0 // CLIENT_MYSQL (CLIENT_LONG_PASSWORD); clear = MariaDB extended caps present
	ClientFoundRows                 uint64 = 1 << 1
	ClientLongFlag                  uint64 = 1 << 2
	ClientConnectWithDB             uint64 = 1 << 3 // CLIENT_CONNECT_WITH_DB
	ClientNoSchema                  uint64 = 1 << 4
	ClientCompress                  uint64 = 1 << 5 // CLIENT_COMPRESS
	ClientODBC                      uint64 = 1 << 6
	ClientLocalFiles                uint64 = 1 << 7 // CLIENT_LOCAL_FILES
	ClientIgnoreSpace               uint64 = 1 << 8
	ClientProtocol41                uint64 = 1 << 9  // CLIENT_PROTOCOL_41
	ClientInteractive               uint64 = 1 << 10 // CLIENT_INTERACTIVE
	ClientSSL                       uint64 = 1 << 11 // CLIENT_SSL
	ClientIgnoreSigpipe             uint64 = 1 << 12
	ClientTransactions              uint64 = 1 << 13
	ClientReserved                  uint64 = 1 << 14
	ClientSecureConnection          uint64 = 1 << 15 // CLIENT_SECURE_CONNECTION (CLIENT_RESERVED2)
	ClientMultiStatements           uint64 = 1 << 16
	ClientMultiResults              uint64 = 1 << 17
	ClientPSMultiResults            uint64 = 1 << 18
	ClientPluginAuth                uint64 = 1 << 19 // CLIENT_PLUGIN_AUTH
	ClientConnectAttrs              uint64 = 1 << 20 // CLIENT_CONNECT_ATTRS
	ClientPluginAuthLenencData      uint64 = 1 << 21 // CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
	ClientCanHandleExpiredPasswords uint64 = 1 << 22
	ClientSessionTrack              uint64 = 1 << 23 // CLIENT_SESSION_TRACK
	ClientDeprecateEOF              uint64 = 1 << 24 // CLIENT_DEPRECATE_EOF
	ClientOptionalResultsetMetadata uint64 = 1 << 25 // MySQL 8 CLIENT_OPTIONAL_RESULTSET_METADATA
	ClientZstdCompression           uint64 = 1 << 26 // MySQL 8 CLIENT_ZSTD_COMPRESSION_ALGORITHM
	ClientQueryAttributes           uint64 = 1 << 27 // MySQL 8 CLIENT_QUERY_ATTRIBUTES
	ClientMultiFactorAuth           uint64 = 1 << 28 // MySQL 8 MULTI_FACTOR_AUTHENTICATION
	ClientProgressObsolete          uint64 = 1 << 29 // CLIENT_PROGRESS_OBSOLETE (MariaDB)
	ClientSSLVerifyServerCert       uint64 = 1 << 30
	ClientRememberOptions           uint64 = 1 << 31

	MariaDBClientProgress         uint64 = 1 << 32 // MARIADB_CLIENT_PROGRESS
	MariaDBClientComMulti         uint64 = 1 << 33 // reserved (COM_MULTI)
	MariaDBClientStmtBulkOps      uint64 = 1 << 34 // MARIADB_CLIENT_STMT_BULK_OPERATIONS
	MariaDBClientExtendedMetadata uint64 = 1 << 35 // MARIADB_CLIENT_EXTENDED_METADATA
	MariaDBClientCacheMetadata    uint64 = 1 << 36 // MARIADB_CLIENT_CACHE_METADATA
	MariaDBClientBulkUnitResults  uint64 = 1 << 37 // MARIADB_CLIENT_BULK_UNIT_RESULTS (11.5+)
)

// UnfollowableCaps are the capabilities a passive tracker cannot follow:
// compression rewrites the framing, TLS hides it, and the MySQL 8 / MariaDB
// 11.5 bits below change response grammar in ways the tracker does not model.
// The proxy clears them in the greeting it relays (so clients never ask for
// them) and in the handshake response (so a client that asks anyway does not
// get them from the server).
const UnfollowableCaps = ClientCompress | ClientSSL | ClientZstdCompression |
	ClientOptionalResultsetMetadata | ClientQueryAttributes | ClientMultiFactorAuth |
	MariaDBClientBulkUnitResults

// Server status flags carried by OK and EOF packets.
const (
	ServerStatusInTrans       uint16 = 0x0001
	ServerStatusAutocommit    uint16 = 0x0002
	ServerMoreResultsExists   uint16 = 0x0008 // SERVER_MORE_RESULTS_EXISTS
	ServerStatusCursorExists  uint16 = 0x0040 // SERVER_STATUS_CURSOR_EXISTS
	ServerStatusLastRowSent   uint16 = 0x0080 // SERVER_STATUS_LAST_ROW_SENT
	ServerSessionStateChanged uint16 = 0x4000 // SERVER_SESSION_STATE_CHANGED
)

// Session state change types inside an OK packet's session-state info.
const (
	SessionTrackSystemVariables byte = 0 // SESSION_TRACK_SYSTEM_VARIABLES
	SessionTrackSchema          byte = 1 // SESSION_TRACK_SCHEMA
)

// First payload bytes with a fixed meaning in responses.
const (
	headerOK       byte = 0x00
	headerAuthMore byte = 0x01 // auth phase: more data for the client plugin
	headerInfile   byte = 0xfb // LOCAL INFILE request (never a valid column count)
	headerEOF      byte = 0xfe // EOF, OK under DEPRECATE_EOF, AuthSwitchRequest in auth
	headerERR      byte = 0xff
	headerGreeting byte = 0x0a // protocol version 10
)

// MaxPacketLen is the largest payload of one physical packet. A payload of
// exactly this length means the logical packet continues in the next one.
const MaxPacketLen = 0xffffff

// progressCode is the error code MariaDB uses for progress-report packets:
// 0xFF then 0xFFFF. They arrive mid-response and are not terminal.
const progressCode = 0xffff
