package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abortscope/abortscope/events"
)

// WriteJSON writes the summaries as one indented JSON array, as GET
// /clients answers.
func WriteJSON(w io.Writer, sums []Summary) error {
	if sums == nil {
		sums = []Summary{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sums)
}

// WriteTable writes the summaries as a table for a person, worst client
// first as given, and a line of totals.
func WriteTable(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tPROGRAM\tPROCESS\tCONNS\tCLEAN%\tNO_QUIT\tRESET\tIN_FLIGHT\tOTHER\tLAST ABORT")
	var conns, aborts int
	for _, s := range sums {
		conns += s.Conns
		aborts += s.Aborts
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n",
			clientName(s.User, s.Host), dash(s.Program), dash(s.Process), s.Conns,
			percent(s.Verdicts[events.Clean], s.Conns),
			s.Verdicts[events.ClientNoQuit], s.Verdicts[events.ClientReset],
			s.Verdicts[events.ClientAbortInFlight], other(s), lastAbort(s.LastAbort))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d clients, %d connections, %d aborted by the client (%s)\n",
		len(sums), conns, aborts, percent(aborts, conns))
	return err
}

// csvHeader names the CSV columns; the verdict columns count connections.
var csvHeader = []string{
	"user", "host", "program", "process", "client_name", "client_version",
	"conns", "clean", "client_no_quit", "client_reset", "client_abort_in_flight", "other",
	"aborts", "clean_share", "first_seen", "last_seen",
	"last_abort_ts", "last_abort_verdict", "last_abort_server_conn_id", "last_abort_last_command",
	"pids", "example_server_conn_ids", "causes",
}

// WriteCSV writes the summaries as CSV with a header row, times in RFC
// 3339, lists space-separated.
func WriteCSV(w io.Writer, sums []Summary) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, s := range sums {
		var laTS, laVerdict, laID, laCmd string
		if a := s.LastAbort; a != nil {
			laTS, laVerdict, laCmd = a.TS.Format(time.RFC3339Nano), string(a.Verdict), a.LastCommand
			laID = strconv.FormatUint(uint64(a.ServerConnID), 10)
		}
		cw.Write([]string{
			s.User, s.Host, s.Program, s.Process, s.ClientName, s.ClientVersion,
			strconv.Itoa(s.Conns), strconv.Itoa(s.Verdicts[events.Clean]),
			strconv.Itoa(s.Verdicts[events.ClientNoQuit]), strconv.Itoa(s.Verdicts[events.ClientReset]),
			strconv.Itoa(s.Verdicts[events.ClientAbortInFlight]), strconv.Itoa(other(s)),
			strconv.Itoa(s.Aborts), strconv.FormatFloat(s.CleanShare, 'f', 4, 64),
			s.FirstSeen.Format(time.RFC3339Nano), s.LastSeen.Format(time.RFC3339Nano),
			laTS, laVerdict, laID, laCmd,
			joinNums(s.PIDs), joinNums(s.ServerConnIDs), causesField(s.Causes),
		})
	}
	cw.Flush()
	return cw.Error()
}

// causesField writes connection counts per cause as "cause=n" pairs, the
// most frequent first.
func causesField(causes map[string]int) string {
	codes := make([]string, 0, len(causes))
	for c := range causes {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool {
		if causes[codes[i]] != causes[codes[j]] {
			return causes[codes[i]] > causes[codes[j]]
		}
		return codes[i] < codes[j]
	})
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = c + "=" + strconv.Itoa(causes[c])
	}
	return strings.Join(parts, " ")
}

// other counts the connections that ended neither clean nor by a client
// abort: server-side endings, handshakes, faults, shutdowns.
func other(s Summary) int {
	return s.Conns - s.Verdicts[events.Clean] - s.Aborts
}

func clientName(user, host string) string {
	if user == "" {
		user = "?" // no login: the connection ended before authentication
	}
	return user + "@" + dash(host)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return strconv.Itoa(int(float64(n)*100/float64(of)+0.5)) + "%"
}

// shortVerdict drops the "client_" and "abort_" prefixes the table's
// column names already say.
func shortVerdict(v string) string {
	v = strings.TrimPrefix(v, "client_")
	return strings.TrimPrefix(v, "abort_")
}

func lastAbort(a *Abort) string {
	if a == nil {
		return "-"
	}
	s := fmt.Sprintf("%s %s conn %d", a.TS.UTC().Format(time.RFC3339), shortVerdict(string(a.Verdict)), a.ServerConnID)
	switch {
	case a.LastCommand == "":
	case a.Verdict == events.ClientAbortInFlight:
		s += " during " + a.LastCommand
	default:
		s += " after " + a.LastCommand
	}
	return s
}

func joinNums[T int | uint32](ns []T) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.FormatInt(int64(n), 10)
	}
	return strings.Join(parts, " ")
}
