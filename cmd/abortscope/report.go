package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/report"
)

// reportCommand is `abortscope report`: the clients ranked by the
// connections they abort, from an events file or a running serve.
func reportCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "rank clients (user@host, program, process) by the connections they abort without mysql_close()",
		Description: "Reads the events serve wrote (--events), or asks a running serve (--admin, GET /clients),\n" +
			"and prints one row per client: connections, share of clean closes, aborts by kind and the last abort.\n" +
			"Aborts are client_no_quit (FIN while idle), client_reset (RST while idle) and client_abort_in_flight.\n\n" +
			"Examples:\n" +
			"   abortscope report --events events.jsonl --since 24h --top 10\n" +
			"   abortscope report --events events.jsonl.1 --events events.jsonl --format csv > clients.csv\n" +
			"   abortscope report --admin 127.0.0.1:9307",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: "events", Usage: "events `FILE` written by serve; - for stdin; repeat for rotated files"},
			&cli.StringFlag{Name: "admin", Usage: "`URL` of a running serve's admin API: report its live /clients instead of a file"},
			&cli.DurationFlag{Name: "since", Usage: "only connections that ended in the last `DURATION` (e.g. 24h); with --events"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "output `FORMAT`: table, json or csv"},
			&cli.IntFlag{Name: "top", Usage: "print only the first `N` clients; 0 for all"},
		}, adminTokenFlags()...),
		Action: func(cc *cli.Context) error {
			return runReport(cc, stdout, stderr)
		},
	}
}

func runReport(cc *cli.Context, stdout, stderr io.Writer) error {
	files, adminURL := cc.StringSlice("events"), cc.String("admin")
	format := cc.String("format")
	switch {
	case len(files) == 0 && adminURL == "":
		return usagef("give --events FILE (the events serve wrote) or --admin URL (a running serve's admin API)")
	case len(files) > 0 && adminURL != "":
		return usagef("give --events or --admin, not both")
	case adminURL != "" && cc.IsSet("since"):
		return usagef("--since works with --events; /clients counts every connection since serve started: drop --since, or read --events")
	case cc.Duration("since") < 0:
		return usagef("--since %s: want a positive duration, e.g. 24h", cc.Duration("since"))
	case cc.Int("top") < 0:
		return usagef("--top %d: want 0 (all) or more", cc.Int("top"))
	case format != "table" && format != "json" && format != "csv":
		return usagef("--format must be table, json or csv, not %q", format)
	}

	var sums []report.Summary
	if adminURL != "" {
		c, err := newAdminClient(cc, adminURL)
		if err != nil {
			return err
		}
		if err := c.call(cc.Context, http.MethodGet, "/clients", nil, http.StatusOK, &sums); err != nil {
			return err
		}
		report.Rank(sums)
	} else {
		agg := &report.Aggregator{}
		if d := cc.Duration("since"); d > 0 {
			agg.Since = time.Now().Add(-d)
		}
		for _, name := range files {
			if err := readEventsFile(cc, name, agg.Add, stderr); err != nil {
				return err
			}
		}
		sums = agg.Summaries()
	}
	if top := cc.Int("top"); top > 0 && top < len(sums) {
		sums = sums[:top]
	}
	switch format {
	case "json":
		return report.WriteJSON(stdout, sums)
	case "csv":
		return report.WriteCSV(stdout, sums)
	}
	if err := report.WriteTable(stdout, sums); err != nil {
		return err
	}
	return report.WriteAdvice(stdout, sums)
}

// readEventsFile streams the events of file name ("-": stdin) to fn. Lines
// that are not events are skipped and counted on stderr.
func readEventsFile(cc *cli.Context, name string, fn func(*events.Event), stderr io.Writer) error {
	var r io.Reader = cc.App.Reader
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return fileError("--events", name, err, "the file serve's --events writes (and its rotated files, each with --events), or - for stdin")
		}
		defer f.Close()
		r = f
	}
	st, err := report.ReadEvents(r, fn)
	if err != nil {
		return fmt.Errorf("--events %s: %w", name, err)
	}
	if st.Bad > 0 {
		fmt.Fprintf(stderr, "abortscope %s: %s: skipped %d of %d lines that are not events (first: %s)\n",
			cc.Command.Name, name, st.Bad, st.Lines, st.FirstBad)
	}
	return nil
}
