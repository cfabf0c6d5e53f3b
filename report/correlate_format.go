package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteMatchesJSON writes the matches and totals as one JSON object:
// {"lines": [...], "summary": {...}}.
func WriteMatchesJSON(w io.Writer, ms []Match, t Totals) error {
	if ms == nil {
		ms = []Match{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Lines   []Match `json:"lines"`
		Summary Totals  `json:"summary"`
	}{ms, t})
}

// WriteMatchesTable writes one row per log line: where it is in the log,
// what it says, and who the proxy saw on that connection; then the totals.
func WriteMatchesTable(w io.Writer, ms []Match, t Totals) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tTIME\tCONN\tLOGGED\tCLIENT\tPROGRAM\tPROCESS\tVERDICT\tEXPECTED\tAGREE\tNOTE")
	for _, m := range ms {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t", m.No, m.TS.Format("2006-01-02 15:04:05"), m.Conn, logged(m.LogLine))
		e := m.Event
		if e == nil {
			fmt.Fprintf(tw, "-\t-\t-\t-\t-\t-\t%s\n", m.Note)
			continue
		}
		agree := "no"
		if m.Agrees != nil && *m.Agrees {
			agree = "yes"
		}
		user := e.User
		if user == "" {
			user = "?"
		}
		fmt.Fprintf(tw, "%s@%s\t%s\t%s\t%s\t%d\t%s\t%s\n",
			user, dash(e.ClientAddr), dash(programOf(e.Attrs)), processOf(e.ClientCmd, pidOf(e)),
			e.Verdict, e.ExpectedServerError, agree, m.Note)
	}
	tw.Flush()
	// Rows without a note end in the padding of the AGREE column.
	for line := range bytes.Lines(buf.Bytes()) {
		if _, err := w.Write(append(bytes.TrimRight(line, " \n"), '\n')); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%d log lines: %d matched, %d unmatched (no event), %d disagreeing\n",
		t.Lines, t.Matched, t.Unmatched, t.Disagreeing)
	return err
}

// shortReasons shortens the reasons of "Aborted connection" lines.
var shortReasons = map[string]string{
	"Got an error reading communication packets":             "error reading",
	"Got an error writing communication packets":             "error writing",
	"Got timeout reading communication packets":              "timeout reading",
	"Got timeout writing communication packets":              "timeout writing",
	"This connection closed normally without authentication": "no authentication",
	"Got a packet bigger than 'max_allowed_packet' bytes":    "packet too large",
	"Got packets out of order":                               "out of order",
}

// logged says in a few words what a line reports.
func logged(l LogLine) string {
	switch l.Kind {
	case KindReadError:
		return "read error " + strconv.Itoa(l.VioErrno)
	case KindWriteError:
		return "write error " + strconv.Itoa(l.VioErrno)
	}
	r := shortReasons[l.Reason]
	if r == "" {
		r = dash(l.Reason)
	}
	return "aborted: " + r
}

// processOf names a client process: "billing (pid 4242)", "pid 4242", or
// "-".
func processOf(cmd string, pid int) string {
	var parts []string
	if name := ProcessName(cmd); name != "" {
		parts = append(parts, name)
	}
	if pid != 0 {
		p := "pid " + strconv.Itoa(pid)
		if len(parts) > 0 {
			p = "(" + p + ")"
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
