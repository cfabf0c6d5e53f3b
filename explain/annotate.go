package explain

import (
	"fmt"
	"net"
	"strings"

	"github.com/abortscope/abortscope/events"
)

// Classify returns the cause of e: the first row of Causes whose condition
// holds. It never returns nil (the last row holds for every event).
func Classify(e *events.Event) *Cause {
	for i := range Causes {
		if Causes[i].match(e) {
			return &Causes[i]
		}
	}
	return &Causes[len(Causes)-1]
}

// ByCode returns the cause with code, or nil.
func ByCode(code string) *Cause {
	for i := range Causes {
		if Causes[i].Code == code {
			return &Causes[i]
		}
	}
	return nil
}

// Annotate fills e's Cause and Advice. It is the proxy's Annotate hook, so
// it runs once per ended connection, from many goroutines at once; it
// reads only e and the table.
func Annotate(e *events.Event) {
	c := Classify(e)
	e.Cause = c.Code
	e.Advice = c.AdviceFor(e.Attrs["_client_name"])
	switch c.Code {
	case CauseServerIdleTimeout:
		e.Advice = idleLearned(e) + " " + e.Advice
	case CauseSkippedClose, CauseExitBeforeQuit, CauseKilledMidResult:
		if e.Verdict == events.ClientReset || e.Close == "rst" {
			e.Advice += " The socket was reset, not closed: the process may have been killed."
		}
	}
}

// AdviceFor is the cause's advice for the library whose _client_name is
// clientName: the library's own when the table has it, else the general
// advice.
func (c *Cause) AdviceFor(clientName string) string {
	if a, ok := c.Libraries[LibraryOf(clientName)]; ok {
		return a
	}
	return c.Advice
}

// idleLearned says how the idle timeout was learned.
func idleLearned(e *events.Event) string {
	if e.ServerErrorCode == 4031 {
		return fmt.Sprintf("Learned from the server's ERR 4031 after %.0f s idle.", e.IdleMS/1000)
	}
	return fmt.Sprintf("Learned from MariaDB's wait_timeout signature (a reset while idle, after %.1f s idle): the session's wait_timeout is at most that.", e.IdleMS/1000)
}

// ServerLogLine is the line MariaDB logs for the connection of e (with
// --log-warnings=2 or more), or "" when it logs none. The host is the one
// the server sees: abortscope's address, which a loopback upstream logs as
// localhost (no --skip-name-resolve).
func ServerLogLine(e *events.Event) string {
	host := "localhost"
	if h, _, err := net.SplitHostPort(e.Upstream); err == nil {
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			host = "<abortscope's host>"
		}
	}
	db := e.DB
	if db == "" {
		db = "unconnected"
	}
	aborted := func(db, user, why string) string {
		return fmt.Sprintf("Aborted connection %d to db: '%s' user: '%s' host: '%s' (%s)", e.ServerConnID, db, user, host, why)
	}
	switch {
	case e.Verdict == events.HandshakeAbort, e.Verdict == events.ServerConnectTimeout:
		if e.User != "" {
			// The login named a user (an auth switch was pending): MariaDB
			// logs only the failed read, no "Aborted connection" line
			// (measured, e2e/fidelity).
			return ""
		}
		return aborted("unconnected", "unauthenticated", "This connection closed normally without authentication")
	case e.ServerErrorCode == 1045 && e.ServerErrorMessage != "":
		return e.ServerErrorMessage
	case e.Verdict == events.ServerClosed:
		return aborted(db, e.User, "KILLED")
	case e.ServerErrorCode == 1153:
		return aborted(db, e.User, "Got a packet bigger than 'max_allowed_packet' bytes")
	}
	switch e.ExpectedServerError {
	case events.ErNetReadError:
		return aborted(db, e.User, "Got an error reading communication packets")
	case events.ErNetErrorOnWrite:
		return aborted(db, e.User, "Got an error writing communication packets")
	case events.ErNetReadInterrupted:
		return aborted(db, e.User, "Got timeout reading communication packets")
	case 1156:
		return aborted(db, e.User, "Got packets out of order")
	}
	return ""
}

// Markdown renders the cause table, then the library-specific advice, as
// the README shows them.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| cause | covers | what MariaDB logs | advice |\n|---|---|---|---|\n")
	for _, c := range Causes {
		fmt.Fprintf(&b, "| `%s` | %s: %s | %s | %s |\n", c.Code, c.Title, cell(c.Covers), cell(c.ServerLog), cell(c.Advice))
	}
	b.WriteString("\nAdvice in the library's own terms, chosen by the `_client_name` attribute:\n\n")
	b.WriteString("| cause | library | advice |\n|---|---|---|\n")
	for _, c := range Causes {
		for _, l := range libraryNames {
			if a, ok := c.Libraries[l.key]; ok {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Code, l.name, cell(a))
			}
		}
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
