package explain

import (
	"slices"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
)

func TestAnnotate(t *testing.T) {
	goDriver := map[string]string{"_client_name": "Go-MySQL-Driver"}
	py := map[string]string{"_client_name": "pymysql"}
	node := map[string]string{"_client_name": "Node-MySQL-2"}
	hikari := map[string]string{"_client_name": "MariaDB Connector/J"}
	tests := []struct {
		name   string
		ev     events.Event
		cause  string
		advice string // a substring the advice must hold
	}{
		{"clean", events.Event{Verdict: "clean", Close: "quit"}, CauseClean, "Nothing"},
		{"proxy limit", events.Event{Verdict: "proxy_limit", Close: "err_packet"}, CauseProxyMaxConnections, "--max-connections"},
		{"binlog dump end", events.Event{Verdict: "binlog_dump_end", Close: "fin"}, CauseBinlogDumpEnd, "--stop-never"},
		{"connect timeout", events.Event{Verdict: "server_connect_timeout", Close: "rst"}, CauseConnectTimeout, "connect_timeout"},
		{"no_quit pymysql", events.Event{Verdict: "client_no_quit", Close: "fin", IdleMS: 300, Attrs: py}, CauseSkippedClose, "conn.close()"},
		{"no_quit go", events.Event{Verdict: "client_no_quit", Close: "fin", IdleMS: 300, Attrs: goDriver}, CauseSkippedClose, "db.Close()"},
		{"reset idle", events.Event{Verdict: "client_reset", Close: "rst", IdleMS: 300}, CauseSkippedClose, "killed"},
		{"no_quit unknown lib", events.Event{Verdict: "client_no_quit", IdleMS: 300}, CauseSkippedClose, "mysql_close()"},
		{"exit before quit node", events.Event{Verdict: "client_no_quit", Close: "fin", IdleMS: 0.4, Attrs: node}, CauseExitBeforeQuit, "connection.end()"},
		{"idle timeout go", events.Event{Verdict: "server_idle_timeout", IdleMS: 2000, Attrs: goDriver}, CauseServerIdleTimeout, "SetConnMaxIdleTime"},
		{"idle timeout learned", events.Event{Verdict: "server_idle_timeout", IdleMS: 2000, Attrs: hikari}, CauseServerIdleTimeout, "Learned from MariaDB"},
		{"idle timeout hikari", events.Event{Verdict: "server_idle_timeout", IdleMS: 2000, Attrs: hikari}, CauseServerIdleTimeout, "maxLifetime"},
		{"idle timeout 4031", events.Event{Verdict: "server_idle_timeout", ServerErrorCode: 4031, IdleMS: 8000}, CauseServerIdleTimeout, "ERR 4031"},
		{"killed mid result", events.Event{Verdict: "client_abort_in_flight", Phase: "result", Close: "rst", IdleMS: 3}, CauseKilledMidResult, "middle of a result"},
		{"stopped reading", events.Event{Verdict: "client_abort_in_flight", Phase: "result", Close: "rst", IdleMS: 1500, Attrs: py}, CauseClientStoppedReading, "SSCursor"},
		{"read timeout go", events.Event{Verdict: "client_abort_in_flight", Phase: "command", Close: "fin", IdleMS: 1000, Attrs: goDriver}, CauseClientReadTimeout, "readTimeout"},
		{"abandoned", events.Event{Verdict: "client_abort_in_flight", Phase: "command", Close: "rst", IdleMS: 20}, CauseAbandonedQuery, "cancelled"},
		{"infile", events.Event{Verdict: "client_abort_in_flight", Phase: "infile"}, CauseInfileAborted, "LOAD DATA"},
		{"packet too large", events.Event{Verdict: "server_error", ServerErrorCode: 1153}, CausePacketTooLarge, "max_allowed_packet"},
		{"access denied", events.Event{Verdict: "auth_failed", ServerErrorCode: 1045}, CauseAccessDenied, "password"},
		{"too many", events.Event{Verdict: "server_error", ServerErrorCode: 1040}, CauseTooManyConnections, "max_connections"},
		{"too many at login", events.Event{Verdict: "auth_failed", ServerErrorCode: 1040, Phase: "handshake"}, CauseTooManyConnections, "max_connections"},
		{"user limit", events.Event{Verdict: "server_error", ServerErrorCode: 1203}, CauseTooManyConnections, "max_connections"},
		{"host blocked", events.Event{Verdict: "server_error", ServerErrorCode: 1129}, CauseHostBlocked, "FLUSH HOSTS"},
		{"killed", events.Event{Verdict: "server_closed", Close: "fin"}, CauseServerKilledOrShutdown, "KILL"},
		{"shutdown err", events.Event{Verdict: "server_error", ServerErrorCode: 1053}, CauseServerKilledOrShutdown, "KILL"},
		{"other server error", events.Event{Verdict: "server_error", ServerErrorCode: 1156}, CauseServerError, "server_error_code"},
		{"server reset", events.Event{Verdict: "server_reset", Close: "rst", Phase: "command"}, CauseNetwork, "firewalls"},
		{"timeout", events.Event{Verdict: "client_abort_in_flight", Close: "timeout", Phase: "result"}, CauseNetwork, "keepalive"},
		{"handshake", events.Event{Verdict: "handshake_abort"}, CauseHandshakeAbort, "health check"},
		{"requires TLS", events.Event{Verdict: "handshake_abort", TLSError: events.TLSClientRequired}, CauseClientRequiresTLS, "--client-tls passthrough"},
		{"rejected certificate", events.Event{Verdict: "handshake_abort", TLSError: events.TLSClientRejectedCert}, CauseClientRejectedCert, "--tls-cert"},
		{"client TLS failed", events.Event{Verdict: "handshake_abort", TLSError: events.TLSClientFailed}, CauseClientTLSFailed, "TLS version"},
		{"upstream TLS", events.Event{Verdict: "handshake_abort", TLSError: events.TLSUpstreamFailed}, CauseUpstreamTLS, "--upstream-ca"},
		{"upstream without TLS", events.Event{Verdict: "handshake_abort", TLSError: events.TLSUpstreamMissing}, CauseUpstreamTLS, "--upstream-tls"},
		{"internal error", events.Event{Verdict: "internal_error"}, CauseInternalError, "report"},
		{"unreachable", events.Event{Verdict: "upstream_unreachable", Close: "dial_error"}, CauseUpstreamUnreachable, "--upstream"},
		{"proxy shutdown", events.Event{Verdict: "proxy_shutdown", Close: "shutdown"}, CauseProxyShutdown, "reconnect"},
		{"fault", events.Event{Verdict: "fault_injected", Close: "fault"}, CauseFaultInjected, "fault rule"},
		{"binlog", events.Event{Verdict: "client_abort_in_flight", Phase: "binlog", Close: "fin"}, CauseUnknown, "verdict"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.ev
			Annotate(&e)
			if e.Cause != tt.cause {
				t.Errorf("cause %q, want %q", e.Cause, tt.cause)
			}
			if !strings.Contains(e.Advice, tt.advice) {
				t.Errorf("advice %q does not mention %q", e.Advice, tt.advice)
			}
		})
		seen[tt.cause] = true
	}
	for _, c := range Causes {
		if !seen[c.Code] {
			t.Errorf("cause %q has no test case", c.Code)
		}
	}
}

func TestLibraryOf(t *testing.T) {
	for name, want := range map[string]string{
		"Go-MySQL-Driver": LibGoSQLDriver, "libmariadb": LibLibmariadb, "libmysql": LibLibmariadb,
		"pymysql": LibPyMySQL, "mysqlnd": LibMysqlnd, "Node-MySQL-2": LibMySQL2, "mysql2": LibMySQL2,
		"MariaDB Connector/J": LibConnectorJ, "MySQL Connector/J": LibConnectorJ,
		"mysql-connector-java": LibConnectorJ, "": "", "go-mysql": "",
	} {
		if got := LibraryOf(name); got != want {
			t.Errorf("LibraryOf(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCodesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Causes {
		if seen[c.Code] || c.Code == "" || c.Title == "" || c.Advice == "" || c.match == nil {
			t.Errorf("cause %q: duplicate or incomplete", c.Code)
		}
		seen[c.Code] = true
		for lib := range c.Libraries {
			if !slices.ContainsFunc(libraryNames, func(l struct{ key, name string }) bool { return l.key == lib }) {
				t.Errorf("cause %q: advice for unknown library %q", c.Code, lib)
			}
		}
	}
}

func TestServerLogLine(t *testing.T) {
	e := events.Event{ServerConnID: 42, DB: "shop", User: "app", Upstream: "127.0.0.1:3306",
		Verdict: "client_abort_in_flight", ExpectedServerError: 1160}
	want := "Aborted connection 42 to db: 'shop' user: 'app' host: 'localhost' (Got an error writing communication packets)"
	if got := ServerLogLine(&e); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	e = events.Event{ServerConnID: 7, Upstream: "db:3306", Verdict: "handshake_abort"}
	if got := ServerLogLine(&e); !strings.Contains(got, "'unauthenticated' host: '<abortscope's host>' (This connection closed normally") {
		t.Errorf("handshake: %q", got)
	}
	// Past the login packet (an auth switch pending), no Aborted line.
	if got := ServerLogLine(&events.Event{ServerConnID: 8, User: "app", Verdict: "handshake_abort"}); got != "" {
		t.Errorf("handshake after the login packet: %q, want none", got)
	}
	denied := events.Event{Verdict: "auth_failed", ServerErrorCode: 1045, ServerErrorMessage: "Access denied for user 'a'@'localhost' (using password: YES)"}
	if got := ServerLogLine(&denied); got != denied.ServerErrorMessage {
		t.Errorf("access denied: %q", got)
	}
	if got := ServerLogLine(&events.Event{Verdict: "auth_failed", ServerErrorCode: 1040, ServerErrorMessage: "Too many connections"}); got != "" {
		t.Errorf("1040: %q, want none", got)
	}
	if got := ServerLogLine(&events.Event{Verdict: "clean"}); got != "" {
		t.Errorf("clean: %q, want none", got)
	}
}
