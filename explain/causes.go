// Package explain says why a connection ended and what to change: a cause
// (a stable short code) and advice, in the terms of the client library
// that connected when it is known. The cause table is here and only here:
// Annotate reads it, the README's table is rendered from it (Markdown),
// and `abortscope explain` and `abortscope report` print its advice.
package explain

import (
	"github.com/abortscope/abortscope/events"
)

// Cause codes. They are a contract, like the event's field names: add
// codes, never rename them.
const (
	CauseClean                  = "clean"
	CauseSkippedClose           = "skipped_close"
	CauseExitBeforeQuit         = "exit_before_quit"
	CauseServerIdleTimeout      = "server_idle_timeout"
	CauseConnectTimeout         = "connect_timeout"
	CauseBinlogDumpEnd          = "binlog_dump_end"
	CauseKilledMidResult        = "killed_mid_result"
	CauseClientStoppedReading   = "client_stopped_reading"
	CauseClientReadTimeout      = "client_read_timeout"
	CauseAbandonedQuery         = "abandoned_query"
	CauseInfileAborted          = "infile_aborted"
	CausePacketTooLarge         = "packet_too_large"
	CauseAccessDenied           = "access_denied"
	CauseTooManyConnections     = "too_many_connections"
	CauseHostBlocked            = "host_blocked"
	CauseServerKilledOrShutdown = "server_killed_or_shutdown"
	CauseServerError            = "server_error"
	CauseNetwork                = "network"
	CauseHandshakeAbort         = "handshake_abort"
	CauseClientRequiresTLS      = "client_requires_tls"
	CauseClientRejectedCert     = "client_rejected_certificate"
	CauseClientTLSFailed        = "client_tls_failed"
	CauseUpstreamTLS            = "upstream_tls"
	CauseInternalError          = "internal_error"
	CauseUpstreamUnreachable    = "upstream_unreachable"
	CauseProxyMaxConnections    = "proxy_max_connections"
	CauseProxyShutdown          = "proxy_shutdown"
	CauseFaultInjected          = "fault_injected"
	CauseUnknown                = "unknown"
)

// Thresholds on idle_ms that tell the client-side causes apart.
const (
	// exitBeforeQuitMS: a close this soon after the last reply is a
	// process exiting right after its last callback, not a forgotten close.
	exitBeforeQuitMS = 5
	// stalledMS: an in-flight connection silent this long was waited on
	// (a timeout), not killed at once.
	stalledMS = 1000
	// waitedMS: a client that left this long after sending a statement
	// the server was still computing had a timeout, not a crash.
	waitedMS = 500
)

// Cause is one row of the cause table.
type Cause struct {
	Code  string
	Title string
	// Covers says which verdicts and conditions the cause covers, in the
	// event's terms (Markdown).
	Covers string
	// ServerLog is what MariaDB logs for it (Markdown).
	ServerLog string
	// Advice is what to change, whatever the library.
	Advice string
	// Libraries is advice in a library's own terms, by library key
	// (LibraryOf), naming the setting or call.
	Libraries map[string]string

	match func(e *events.Event) bool
}

const (
	logRead    = "`Aborted connection N … (Got an error reading communication packets)`, 1158; `Aborted_clients`+1"
	logWrite   = "`Got an error writing communication packets`, `Aborted connection N … (Got an error writing communication packets)`, 1160; `Aborted_clients`+1"
	logTimeout = "`Aborted connection N … (Got timeout reading communication packets)`, 1159; `Aborted_clients`+1"
)

var closeAdvice = map[string]string{
	LibGoSQLDriver: "Call `rows.Close()` (defer it) and `db.Close()` before the program exits; `log.Fatal`/`os.Exit` skip deferred closes.",
	LibLibmariadb:  "Call `mysql_close()` on every handle before exit, also on error paths.",
	LibPyMySQL:     "Call `conn.close()`, or use the connection in a `with` block, before the script exits.",
	LibMysqlnd:     "Call `mysqli_close()` / `$pdo = null` when done; with persistent connections (`mysqli.allow_persistent`, `PDO::ATTR_PERSISTENT`) a recycled PHP worker drops them without closing: turn persistence off or keep `mysqli.max_persistent` low.",
	LibMySQL2:      "Call `connection.end()` (`pool.end()`) and wait for its callback or promise before the process exits.",
	LibConnectorJ:  "Close connections with try-with-resources and close the pool (`HikariDataSource.close()`) on shutdown.",
}

var idleAdvice = map[string]string{
	LibGoSQLDriver: "Set `db.SetConnMaxIdleTime` (and `db.SetConnMaxLifetime`) below the server's `wait_timeout`.",
	LibLibmariadb:  "Reconnect after idling, or set `MYSQL_OPT_RECONNECT`; a connection kept longer than `wait_timeout` must ping (`mysql_ping()`) before use.",
	LibPyMySQL:     "Call `conn.ping(reconnect=True)` before using a connection that idled, or let your pool recycle below `wait_timeout` (SQLAlchemy `pool_recycle`).",
	LibMysqlnd:     "Persistent connections outlive `wait_timeout` between requests: turn them off or raise `wait_timeout` above the worker's idle time.",
	LibMySQL2:      "Set the pool's `idleTimeout` (and `maxIdle`) below the server's `wait_timeout`, or enable `enableKeepAlive`.",
	LibConnectorJ:  "Set HikariCP `maxLifetime` and `idleTimeout` (or the pool's equivalent) below `wait_timeout`.",
}

var readTimeoutAdvice = map[string]string{
	LibGoSQLDriver: "The DSN's `readTimeout` or the context deadline passed: raise it above the query's run time, or make the query faster.",
	LibLibmariadb:  "`MYSQL_OPT_READ_TIMEOUT` passed: raise it above the query's run time, or make the query faster.",
	LibPyMySQL:     "`read_timeout` passed: raise it in `pymysql.connect(read_timeout=…)`, or make the query faster.",
	LibMysqlnd:     "`mysqlnd.net_read_timeout` (`MYSQLI_OPT_READ_TIMEOUT`) or `max_execution_time` passed: raise it, or make the query faster.",
	LibMySQL2:      "The query's `timeout` option passed: raise it, or make the query faster.",
	LibConnectorJ:  "`socketTimeout` or `Statement.setQueryTimeout` passed: raise it, or make the query faster.",
}

var stoppedReadingAdvice = map[string]string{
	LibGoSQLDriver: "The code stopped iterating `rows` and then gave up (a context deadline or `readTimeout`); read to the end or call `rows.Close()` early, and page large results.",
	LibPyMySQL:     "An unbuffered `SSCursor` was left unread until a timeout; fetch all rows or `cursor.close()` before doing slow work.",
	LibConnectorJ:  "A streaming `ResultSet` was left unread until `socketTimeout`; close the `ResultSet` (try-with-resources) or read it to the end.",
	LibMySQL2:      "A streamed query was paused (`connection.pause()`) until a timeout; resume or destroy it deliberately.",
}

var exitAdvice = map[string]string{
	LibMySQL2:      "Call `connection.end()` and exit in its callback (or `await` it) instead of `process.exit()` right after the last query: the COM_QUIT is not written yet.",
	LibMysqlnd:     "Call `mysqli_close()` before `exit`.",
	LibGoSQLDriver: "Call `db.Close()` before returning from `main`/`os.Exit`.",
	LibPyMySQL:     "Call `conn.close()` before `sys.exit()`/`os._exit()`.",
	LibLibmariadb:  "Call `mysql_close()` before `exit()`.",
	LibConnectorJ:  "Close the connection (try-with-resources) before `System.exit()`.",
}

// Causes is the cause table, in the order Annotate tries it: the first
// cause whose condition holds is the event's.
var Causes = []Cause{
	{Code: CauseClean, Title: "closed cleanly",
		Covers:    "`clean`",
		ServerLog: "nothing",
		Advice:    "Nothing to change.",
		match:     verdict(events.Clean)},
	{Code: CauseBinlogDumpEnd, Title: "binlog dump finished",
		Covers:    "`binlog_dump_end`: a non-blocking binlog dump reached the end of the last binlog and the server closed the connection",
		ServerLog: "nothing",
		Advice:    "Nothing to change: `mariadb-binlog --read-from-remote-server` without `--stop-never` reads to the end of the last binlog, and MariaDB ends such a dump itself.",
		match:     verdict(events.BinlogDumpEnd)},
	{Code: CauseConnectTimeout, Title: "login slower than connect_timeout",
		Covers:    "`server_connect_timeout`: MariaDB reset a connection whose client had not finished logging in within `connect_timeout`",
		ServerLog: "`Could not read packet: … vio_errno: 1159  length: -1`; before the login packet also `Aborted connection N … user: 'unauthenticated' … (This connection closed normally without authentication)`; `Aborted_connects`+1",
		Advice:    "The client connected and then did not finish its login within the server's `connect_timeout` (default 10 s): a client stalled between connect and login (a paused process, slow DNS or a slow authentication plugin on its side, a TLS handshake over a slow path), or a health check that connects and waits. Find the stall, or raise `connect_timeout`.",
		match:     verdict(events.ServerConnectTimeout)},
	{Code: CauseNetwork, Title: "network",
		Covers:    "`server_reset`; close `timeout`: resets and timeouts neither end chose",
		ServerLog: "depends on where the fault was; often nothing",
		Advice:    "A reset or timeout neither end chose: check firewalls, NAT and load-balancer idle timeouts between client, abortscope and server, and TCP keepalive.",
		match: func(e *events.Event) bool {
			return e.Verdict == events.ServerReset || e.Close == "timeout"
		}},
	{Code: CauseExitBeforeQuit, Title: "exited right after the last reply",
		Covers:    "`client_no_quit` with `idle_ms` under 5: the socket closed right after the last reply",
		ServerLog: logRead,
		Advice:    "The process exited before its close reached the server (typical of callback-style libraries); end the connection and wait for it before exiting.",
		Libraries: exitAdvice,
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientNoQuit && e.IdleMS < exitBeforeQuitMS
		}},
	{Code: CauseSkippedClose, Title: "never closed the connection",
		Covers:    "`client_no_quit`, `client_reset`: the client left while idle without `COM_QUIT`",
		ServerLog: logRead,
		Advice:    "The program never called mysql_close() (or its library's close); close connections and pools before exit.",
		Libraries: closeAdvice,
		match:     verdict(events.ClientNoQuit, events.ClientReset)},
	{Code: CauseServerIdleTimeout, Title: "idle past wait_timeout",
		Covers:    "`server_idle_timeout`: MariaDB reset a connection idle past `wait_timeout` (`interactive_timeout`), learned from its reset-while-idle signature; MySQL's ERR 4031",
		ServerLog: logTimeout,
		Advice:    "Keep the pool's idle time and max lifetime below the server's `wait_timeout`, or raise `wait_timeout`.",
		Libraries: idleAdvice,
		match:     verdict(events.ServerIdleTimeout)},
	{Code: CauseKilledMidResult, Title: "left at once with unread rows",
		Covers:    "`client_abort_in_flight`, phase `result`, `idle_ms` under 1000: the client left while rows were still arriving (killed, crashed, or closed a half-read result); usually close `rst`",
		ServerLog: logWrite,
		Advice:    "The process died or dropped the connection in the middle of a result; find why it exited (OOM, kill, crash) or read results to the end before closing.",
		Libraries: closeAdvice,
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientAbortInFlight && e.Phase == "result" && e.IdleMS < stalledMS
		}},
	{Code: CauseClientStoppedReading, Title: "stopped reading, then left",
		Covers:    "`client_abort_in_flight`, phase `result`, `idle_ms` 1000 or more: the client stopped reading a result, then left (a client-side timeout mid-result)",
		ServerLog: logWrite,
		Advice:    "The client stopped reading a result and gave up later; read results to the end (or page them) before slow work, and close result sets early.",
		Libraries: stoppedReadingAdvice,
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientAbortInFlight && e.Phase == "result"
		}},
	{Code: CauseClientReadTimeout, Title: "client timed out waiting",
		Covers:    "`client_abort_in_flight`, phase `command`, `idle_ms` 500 or more: the client left while the server was still computing, after waiting `idle_ms`: its read timeout was shorter than the query",
		ServerLog: "after a FIN: " + logRead + " when the statement ends; after a RST: 1160",
		Advice:    "The client's read timeout (or deadline) was shorter than the statement; raise it or make the statement faster. The server finishes the statement anyway.",
		Libraries: readTimeoutAdvice,
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientAbortInFlight && e.Phase == "command" && e.IdleMS >= waitedMS
		}},
	{Code: CauseAbandonedQuery, Title: "left right after sending a statement",
		Covers:    "`client_abort_in_flight`, phase `command`, `idle_ms` under 500: the client left right after sending (killed, cancelled)",
		ServerLog: "after a FIN: 1158 when the statement ends; after a RST: 1160",
		Advice:    "The client went away right after sending a statement; look for a process kill, a cancelled context or a crash.",
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientAbortInFlight && e.Phase == "command"
		}},
	{Code: CauseInfileAborted, Title: "LOAD DATA LOCAL upload cut",
		Covers:    "`client_abort_in_flight`, phase `infile`",
		ServerLog: logRead,
		Advice:    "The client stopped in the middle of a `LOAD DATA LOCAL INFILE` upload; check the file it read and that it is not killed during the upload.",
		match: func(e *events.Event) bool {
			return e.Verdict == events.ClientAbortInFlight && e.Phase == "infile"
		}},
	{Code: CausePacketTooLarge, Title: "packet larger than max_allowed_packet",
		Covers:    "`server_error` or `auth_failed` with `server_error_code` 1153",
		ServerLog: "`Aborted connection N … (Got a packet bigger than 'max_allowed_packet' bytes)`",
		Advice:    "A statement or row was larger than the server's `max_allowed_packet`; raise it on the server (and in the client's own `max_allowed_packet` setting) or send smaller statements (batch inserts in chunks).",
		match:     serverCode(1153)},
	{Code: CauseTooManyConnections, Title: "too many connections",
		Covers:    "`server_error` or `auth_failed` with 1040 (`max_connections`; MariaDB refuses it after the login packet), 1203 (`max_user_connections`) or 1226",
		ServerLog: "nothing by default; `Aborted_connects`+1, `Connection_errors_max_connections`+1 for 1040",
		Advice:    "The server's `max_connections` (or the user's limit) was reached; lower pool sizes across clients, close leaked connections, or raise the limit.",
		match:     serverCode(1040, 1203, 1226)},
	{Code: CauseHostBlocked, Title: "host blocked",
		Covers:    "`server_error` or `auth_failed` with 1129",
		ServerLog: "`Host 'h' is blocked because of many connection errors`",
		Advice:    "The server blocked the host after `max_connect_errors` failed handshakes; run `FLUSH HOSTS` (`mariadb-admin flush-hosts`) and fix the failing handshakes. Without PROXY protocol the blocked host is abortscope's address, so every client behind it is blocked.",
		match:     serverCode(1129)},
	{Code: CauseAccessDenied, Title: "access denied",
		Covers:    "`auth_failed` with any code not above; `server_error` with 1045 or 1130",
		ServerLog: "`Access denied for user 'u'@'host' (using password: YES)`; `Aborted_connects`+1",
		Advice:    "Wrong user, password or host grant; check the credentials the application reads and the account's host part (it sees abortscope's address unless PROXY protocol is on).",
		match: func(e *events.Event) bool {
			return e.Verdict == events.AuthFailed || serverCode(1045, 1130)(e)
		}},
	{Code: CauseServerKilledOrShutdown, Title: "killed or shut down by the server",
		Covers:    "`server_closed`; `server_error` with 1053 or 1927",
		ServerLog: "`Aborted connection N … (KILLED)` for `KILL` and shutdown; during a statement also `Could not write packet … vio_errno: 1160` (its end fails to go out); nothing from a server that crashed",
		Advice:    "The server ended the connection: a `KILL`, a shutdown or restart; look for who ran `KILL` (`max_statement_time`, an operator, a watchdog) or a restart.",
		match: func(e *events.Event) bool {
			return e.Verdict == events.ServerClosed || serverCode(1053, 1927)(e)
		}},
	{Code: CauseServerError, Title: "other server error",
		Covers:    "`server_error` with any other code",
		ServerLog: "depends on the error",
		Advice:    "The server sent an error and closed; see `server_error_code` and `server_error_message`.",
		match:     verdict(events.ServerError)},
	{Code: CauseClientRequiresTLS, Title: "client requires TLS",
		Covers:    "`tls_error: client_requires_tls`: the client left right after a greeting without TLS, having sent nothing",
		ServerLog: "`Aborted connection N … user: 'unauthenticated' … (This connection closed normally without authentication)`; `Aborted_connects`+1",
		Advice:    "The client requires TLS (Connector/C 3.4 and MariaDB 11.4+ clients do by default: ERROR 2026 \"SSL is required, but the server does not support it\") and abortscope offered none: run it with `--client-tls passthrough` (the default) or `terminate`, or turn TLS off in the client (`--ssl=0`, `tls=false`, `ssl_disabled=True`).",
		match:     tlsError(events.TLSClientRequired)},
	{Code: CauseClientRejectedCert, Title: "client rejected abortscope's certificate",
		Covers:    "`tls_error: client_rejected_certificate` (`--client-tls terminate`)",
		ServerLog: "nothing (the client never reached it)",
		Advice:    "The client does not trust abortscope's certificate, or it is expired or for another name (see `error`): give `--tls-cert` a certificate for the name clients connect to, signed by a CA they trust (`--ssl-ca`), or use `--client-tls passthrough`. MariaDB 11.4+ clients that verify a self-signed server by its password cannot verify a terminating proxy.",
		match:     tlsError(events.TLSClientRejectedCert)},
	{Code: CauseClientTLSFailed, Title: "TLS with the client failed",
		Covers:    "`tls_error: client_tls_failed`",
		ServerLog: "nothing (the client never reached it)",
		Advice:    "The TLS handshake with the client failed (see `error`): no common TLS version or cipher, or the client closed during it.",
		match:     tlsError(events.TLSClientFailed)},
	{Code: CauseUpstreamTLS, Title: "TLS to the server failed",
		Covers:    "`tls_error: upstream_tls_failed` or `upstream_tls_missing`",
		ServerLog: "`Aborted connection N … (This connection closed normally without authentication)` after a failed handshake",
		Advice:    "abortscope's own TLS session to the server failed (the client got ERR 1105 saying why): check `--upstream-ca` (the CA that signed the server's certificate), `--upstream-server-name` (the name in it), `--upstream-tls` (verify-full checks the name, verify-ca only the chain), and that the server has TLS on.",
		match: func(e *events.Event) bool {
			return e.TLSError == events.TLSUpstreamFailed || e.TLSError == events.TLSUpstreamMissing
		}},
	{Code: CauseHandshakeAbort, Title: "left during the handshake",
		Covers:    "`handshake_abort`",
		ServerLog: "`Could not read packet … vio_errno: 1158` (1160 if it reset while the server decided about its login, or left a passed-through TLS handshake without an alert); before the login packet also `Aborted connection N to db: 'unconnected' user: 'unauthenticated' … (This connection closed normally without authentication)`, after it (an auth switch pending) no `Aborted connection` line; `Aborted_connects`+1",
		Advice:    "The client left before logging in: a health check that only opens a TCP connection, a TLS mismatch, or a connect timeout shorter than the handshake.",
		match:     verdict(events.HandshakeAbort)},
	{Code: CauseUpstreamUnreachable, Title: "server unreachable",
		Covers:    "`upstream_unreachable`",
		ServerLog: "nothing (it never got there)",
		Advice:    "abortscope could not reach the server; check `--upstream`, that the server is up and the network between them.",
		match:     verdict(events.UpstreamUnreachable)},
	{Code: CauseProxyMaxConnections, Title: "abortscope's connection limit",
		Covers:    "`proxy_limit`: `--max-connections` connections were being relayed; the client got ERR 1040 (Too many connections)",
		ServerLog: "nothing (the server was not dialed)",
		Advice:    "More clients connected at once than abortscope's `--max-connections` allows: raise it (keep it below the server's `max_connections`), or lower the clients' pool sizes.",
		match:     verdict(events.ProxyLimit)},
	{Code: CauseProxyShutdown, Title: "abortscope stopped",
		Covers:    "`proxy_shutdown`",
		ServerLog: "nothing for idle connections (the proxy sends `COM_QUIT`); 1158 if cut while the server computed, 1160 mid-reply",
		Advice:    "abortscope was stopped; clients should reconnect.",
		match:     verdict(events.ProxyShutdown)},
	{Code: CauseInternalError, Title: "abortscope failed",
		Covers:    "`internal_error`",
		ServerLog: "depends on where the connection was",
		Advice:    "abortscope's own code failed on this connection and closed it (see `error` and abortscope's log); please report it.",
		match:     verdict(events.InternalError)},
	{Code: CauseFaultInjected, Title: "fault injected",
		Covers:    "`fault_injected`",
		ServerLog: "what the fault's action reproduces",
		Advice:    "A fault rule ended the connection on purpose (see `fault`, `action`).",
		match:     verdict(events.FaultInjected)},
	{Code: CauseUnknown, Title: "unknown",
		Covers:    "anything else (e.g. `client_abort_in_flight` during a binlog dump)",
		ServerLog: "see the verdict",
		Advice:    "No cause in the table fits; see the verdict and phase.",
		match:     func(*events.Event) bool { return true }},
}

func verdict(vs ...events.Verdict) func(*events.Event) bool {
	return func(e *events.Event) bool {
		for _, v := range vs {
			if e.Verdict == v {
				return true
			}
		}
		return false
	}
}

func tlsError(code string) func(*events.Event) bool {
	return func(e *events.Event) bool { return e.TLSError == code }
}

func serverCode(codes ...int) func(*events.Event) bool {
	return func(e *events.Event) bool {
		if e.Verdict != events.ServerError && e.Verdict != events.AuthFailed {
			return false
		}
		for _, c := range codes {
			if e.ServerErrorCode == c {
				return true
			}
		}
		return false
	}
}
