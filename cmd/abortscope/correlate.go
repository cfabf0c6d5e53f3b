package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/report"
)

// correlateCommand is `abortscope correlate`: the server's error log lines
// about aborted connections, each with the client the proxy saw on that
// connection.
func correlateCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "correlate",
		Usage: "name the client behind each \"Aborted connection N\" and \"Could not read/write packet\" line of the server's error log",
		Description: "Joins each such line to serve's event for server connection N (the thread id in the server's greeting)\n" +
			"and prints the client's identity, the proxy's verdict, and whether the proxy's expected_server_error agrees\n" +
			"with what the line reports (1158 reading, 1160 writing). Connection ids restart with the server: of several\n" +
			"events with the id, the one nearest the line's time is taken.\n\n" +
			"Examples:\n" +
			"   abortscope correlate --events events.jsonl --error-log /var/log/mysql/error.log --log-tz Local\n" +
			"   abortscope correlate --events events.jsonl --error-log error.log --max-skew 10m --format json",
		Flags: []cli.Flag{
			// Required, but checked by runCorrelate: urfave's own check
			// prints the help and returns an error main cannot tell from
			// a failure.
			&cli.StringSliceFlag{Name: "events", Usage: "events `FILE` written by serve; - for stdin; repeat for rotated files (required)"},
			&cli.StringFlag{Name: "error-log", Usage: "the server's error log `FILE` (MariaDB 10.x/11.x, MySQL 5.7/8) (required)"},
			&cli.StringFlag{Name: "log-tz", Value: "UTC", Usage: "time `ZONE` of the error log's timestamps (MariaDB writes local time without a zone): UTC, Local, or a name such as Europe/Paris"},
			&cli.DurationFlag{Name: "max-skew", Value: time.Hour, Usage: "match a line only to an event within `DURATION` of it (a client that left during a long query is logged when the query ends); 0 for no limit"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "output `FORMAT`: table or json"},
		},
		Action: func(cc *cli.Context) error {
			return runCorrelate(cc, stdout, stderr)
		},
	}
}

func runCorrelate(cc *cli.Context, stdout, stderr io.Writer) error {
	format := cc.String("format")
	var missing []string
	if len(cc.StringSlice("events")) == 0 {
		missing = append(missing, "--events FILE")
	}
	if cc.String("error-log") == "" {
		missing = append(missing, "--error-log FILE")
	}
	switch {
	case len(missing) > 0:
		return usagef("give %s: the events serve wrote, and the server's error log to match them with", strings.Join(missing, " and "))
	case format != "table" && format != "json":
		return usagef("--format must be table or json, not %q", format)
	case cc.Duration("max-skew") < 0:
		return usagef("--max-skew %s: want 0 (no limit) or more", cc.Duration("max-skew"))
	}
	loc, err := time.LoadLocation(cc.String("log-tz"))
	if err != nil {
		return usagef("--log-tz %q: %w: want UTC, Local, or a zone name such as Europe/Paris", cc.String("log-tz"), err)
	}
	name := cc.String("error-log")
	f, err := os.Open(name)
	if err != nil {
		return fileError("--error-log", name, err, "the server's error log (SELECT @@log_error shows where it is)")
	}
	lines, st, err := report.ReadLog(f, loc)
	f.Close()
	if err != nil {
		return fmt.Errorf("--error-log %s: %w", name, err)
	}
	if st.Matched == 0 {
		fmt.Fprintf(stderr, "abortscope correlate: none of the %d lines of %s is an \"Aborted connection\" or \"Could not read/write packet\" line "+
			"(MariaDB writes the first with log_warnings 2 or more, the others with 4; MySQL with log_error_verbosity 3)\n", st.Lines, name)
	}
	if st.TooLong > 0 {
		fmt.Fprintf(stderr, "abortscope correlate: %s: skipped %d lines longer than %d bytes\n", name, st.TooLong, report.MaxLine)
	}

	c := report.NewCorrelator(lines, cc.Duration("max-skew"))
	for _, ev := range cc.StringSlice("events") {
		if err := readEventsFile(cc, ev, c.Add, stderr); err != nil {
			return err
		}
	}
	ms, totals := c.Matches()
	if format == "json" {
		return report.WriteMatchesJSON(stdout, ms, totals)
	}
	return report.WriteMatchesTable(stdout, ms, totals)
}
