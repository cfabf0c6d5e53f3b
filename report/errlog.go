package report

import (
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kinds of error log line.
const (
	KindAborted    = "aborted"     // Aborted connection N to db: … (reason)
	KindReadError  = "read_error"  // N [Warning] Could not read packet: … vio_errno: 1158
	KindWriteError = "write_error" // N [Warning] Could not write packet: … vio_errno: 1160
)

// LogLine is a line of the server's error log about a connection that
// ended badly.
type LogLine struct {
	No   int    `json:"line_no"` // in the log, counting from 1
	Text string `json:"line"`
	// TS is the line's time. MariaDB writes local time without a zone; it
	// is read in the zone given to ParseLogLine.
	TS time.Time `json:"ts"`
	// Thread is the id at the start of the line: the connection whose
	// thread logged it. For "(KILLED)" that is the killer (0 at shutdown).
	Thread uint64 `json:"thread"`
	// Conn is the connection the line is about: the N of "Aborted
	// connection N", else Thread.
	Conn uint32 `json:"conn"`
	Kind string `json:"kind"`
	// Reason, DB, User, Host: of an "Aborted connection" line.
	Reason string `json:"reason,omitempty"`
	DB     string `json:"db,omitempty"`
	User   string `json:"user,omitempty"`
	Host   string `json:"host,omitempty"`
	// VioErrno is the vio_errno of a read or write error line.
	VioErrno int `json:"vio_errno,omitempty"`
	// Logged is the server error the line reports: 1158 (reading), 1159
	// (timeout reading), 1160 (writing), 1161 (timeout writing), 1153
	// (packet too large), 1156 (out of order), or 0 when it names none
	// ("KILLED", "closed normally without authentication").
	Logged int `json:"logged_error"`
}

// The forms of the line prefix. Each may follow other text (a syslog or
// journald prefix), so none is anchored to the start of the line.
var (
	// MariaDB 10.x and 11.x: "2026-11-25 15:16:30 6 [Warning] …", the hour
	// possibly padded with a space ("2026-11-25  9:05:01").
	mariadbPrefix = regexp.MustCompile(`(?:^|\s)(\d{4}-\d\d-\d\d) +(\d{1,2}:\d\d:\d\d) +(\d+) \[(\w+)\] (.*)$`)
	// MariaDB 5.5 and 10.0, MySQL 5.5: "161122 14:32:07 [Warning] …", some
	// with the thread id.
	oldPrefix = regexp.MustCompile(`(?:^|\s)(\d{6}) +(\d{1,2}:\d\d:\d\d) +(?:(\d+) +)?\[(\w+)\] (.*)$`)
	// MySQL 5.7 and 8: "2024-05-06T07:08:09.123456Z 6 [Note] [MY-010914]
	// [Server] …", with a zone (Z, or +01:00 with log_timestamps=SYSTEM).
	mysqlPrefix = regexp.MustCompile(`(?:^|\s)(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?) +(\d+) \[(\w+)\] (?:\[MY-\d+\] \[\w+\] )?(.*)$`)

	abortedMsg = regexp.MustCompile(`^Aborted connection (\d+) to db: '(.*?)' user: '(.*?)'(?: host: '(.*?)')?(.*)$`)
	reasonMsg  = regexp.MustCompile(`\(([^()]*)\)\.?\s*$`)
	readMsg    = regexp.MustCompile(`^Could not read packet:.*?vio_errno: (\d+)`)
	writeMsg   = regexp.MustCompile(`^Could not write packet:.*?vio_errno: (\d+)`)
)

// reasonErrors maps the reason of an "Aborted connection" line to the
// server error it reports.
var reasonErrors = map[string]int{
	"Got an error reading communication packets":          1158, // ER_NET_READ_ERROR
	"Got timeout reading communication packets":           1159, // ER_NET_READ_INTERRUPTED
	"Got an error writing communication packets":          1160, // ER_NET_ERROR_ON_WRITE
	"Got timeout writing communication packets":           1161, // ER_NET_WRITE_INTERRUPTED
	"Got a packet bigger than 'max_allowed_packet' bytes": 1153, // ER_NET_PACKET_TOO_LARGE
	"Got packets out of order":                            1156, // ER_NET_PACKETS_OUT_OF_ORDER
}

// ParseLogLine reads one line of a MariaDB (10.x, 11.x, older) or MySQL
// (5.7, 8) error log. It accepts "Aborted connection N" lines and the
// "Could not read packet" / "Could not write packet" warnings MariaDB
// writes with log_warnings >= 4; ok is false for every other line. Times
// without a zone are read in loc (nil: UTC).
func ParseLogLine(text string, loc *time.Location) (l LogLine, ok bool) {
	if !strings.Contains(text, "Aborted connection ") && !strings.Contains(text, "Could not ") {
		return LogLine{}, false // most lines: skip the regular expressions
	}
	if loc == nil {
		loc = time.UTC
	}
	var thread, msg string
	var err error
	if m := mariadbPrefix.FindStringSubmatch(text); m != nil {
		l.TS, err = time.ParseInLocation("2006-01-02 15:04:05", m[1]+" "+pad2(m[2]), loc)
		thread, msg = m[3], m[5]
	} else if m := mysqlPrefix.FindStringSubmatch(text); m != nil {
		l.TS, err = time.ParseInLocation("2006-01-02T15:04:05.999999999Z07:00", m[1], loc)
		if err != nil { // no zone
			l.TS, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", m[1], loc)
		}
		thread, msg = m[2], m[4]
	} else if m := oldPrefix.FindStringSubmatch(text); m != nil {
		l.TS, err = time.ParseInLocation("060102 15:04:05", m[1]+" "+pad2(m[2]), loc)
		thread, msg = m[3], m[5]
	} else {
		return LogLine{}, false
	}
	if err != nil {
		return LogLine{}, false
	}
	l.Text = text
	if thread != "" {
		if l.Thread, err = strconv.ParseUint(thread, 10, 64); err != nil {
			return LogLine{}, false
		}
	}
	if m := abortedMsg.FindStringSubmatch(msg); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return LogLine{}, false
		}
		l.Kind, l.Conn, l.DB, l.User, l.Host = KindAborted, uint32(n), m[2], m[3], m[4]
		if r := reasonMsg.FindStringSubmatch(m[5]); r != nil {
			l.Reason = r[1]
			l.Logged = reasonErrors[l.Reason]
		}
		return l, true
	}
	var m []string
	if m = readMsg.FindStringSubmatch(msg); m != nil {
		l.Kind = KindReadError
	} else if m = writeMsg.FindStringSubmatch(msg); m != nil {
		l.Kind = KindWriteError
	} else {
		return LogLine{}, false
	}
	// The line is about the thread that logged it. Without a thread id
	// (old formats), or with an OS thread id (MariaDB before 10.3 printed
	// one, far above any connection id), it cannot be tied to a connection.
	if l.Thread == 0 || l.Thread > math.MaxUint32 {
		return LogLine{}, false
	}
	l.Conn = uint32(l.Thread)
	l.VioErrno, _ = strconv.Atoi(m[1])
	l.Logged = l.VioErrno
	return l, true
}

// pad2 pads a one-digit hour ("9:05:01") for time.Parse.
func pad2(hms string) string {
	if len(hms) == len("9:05:01") {
		return "0" + hms
	}
	return hms
}

// LogStats tells how reading an error log went.
type LogStats struct {
	Lines   int // every line
	Matched int // lines about connections that ended badly
	TooLong int // lines longer than MaxLine, skipped
}

// ReadLog reads an error log as a stream and returns the lines ParseLogLine
// accepts, in order.
func ReadLog(r io.Reader, loc *time.Location) ([]LogLine, LogStats, error) {
	var (
		out []LogLine
		st  LogStats
	)
	err := eachLine(r, MaxLine, func(no int, line []byte) {
		st.Lines++
		if l, ok := ParseLogLine(string(line), loc); ok {
			l.No = no
			out = append(out, l)
		}
	}, func(int) {
		st.Lines++
		st.TooLong++
	})
	st.Matched = len(out)
	return out, st, err
}
