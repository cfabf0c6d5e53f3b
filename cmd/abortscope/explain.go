package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
)

// explainCommand is `abortscope explain`: one connection in full, with its
// cause, the advice and the line MariaDB logged for it.
func explainCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "explain how one connection ended, why, and what to change",
		ArgsUsage: "[EVENT_JSON]",
		Description: "Give one event as an argument, or pick it from an events file with --events FILE and\n" +
			"--conn-id N (abortscope's id) or --server-conn-id N (the N of MariaDB's \"Aborted connection N\").\n" +
			"--markdown-causes prints the cause table; --readme FILE rewrites the table in FILE.\n\n" +
			"Examples:\n" +
			"   abortscope explain --events events.jsonl --server-conn-id 42\n" +
			"   abortscope explain --events events.jsonl.1 --events events.jsonl --conn-id 7\n" +
			"   abortscope explain \"$(tail -n 1 events.jsonl)\"\n" +
			"   abortscope explain --markdown-causes",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "events", Usage: "events `FILE` written by serve; - for stdin; repeat for rotated files"},
			&cli.Uint64Flag{Name: "conn-id", Usage: "the event with conn_id `N`"},
			&cli.Uint64Flag{Name: "server-conn-id", Usage: "the event with server_conn_id `N`"},
			&cli.BoolFlag{Name: "markdown-causes", Usage: "print the cause table as Markdown"},
			&cli.StringFlag{Name: "readme", Usage: "rewrite the cause table between the markers in `FILE`"},
		},
		Action: func(cc *cli.Context) error {
			return runExplain(cc, stdout, stderr)
		},
	}
}

func runExplain(cc *cli.Context, stdout, stderr io.Writer) error {
	if cc.Bool("markdown-causes") {
		_, err := io.WriteString(stdout, explain.Markdown())
		return err
	}
	if name := cc.String("readme"); name != "" {
		b, err := os.ReadFile(name)
		if err != nil {
			return fileError("--readme", name, err, "a Markdown file holding the cause table's markers")
		}
		doc, err := explain.ReplaceBlock(string(b), explain.Markdown())
		if err != nil {
			return fmt.Errorf("--readme %s: %w (put the lines %s and %s where the table goes)", name, err, explain.BeginMarker, explain.EndMarker)
		}
		return os.WriteFile(name, []byte(doc), 0o644)
	}
	ev, err := pickEvent(cc, stderr)
	if err != nil {
		return err
	}
	return writeExplanation(stdout, ev)
}

// pickEvent is the event named on the command line.
func pickEvent(cc *cli.Context, stderr io.Writer) (*events.Event, error) {
	files := cc.StringSlice("events")
	byConn, byServer := cc.IsSet("conn-id"), cc.IsSet("server-conn-id")
	switch {
	case len(files) == 0 && cc.NArg() == 1:
		if byConn || byServer {
			return nil, usagef("--conn-id and --server-conn-id go with --events FILE, not with EVENT_JSON")
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(cc.Args().First()), &ev); err != nil {
			return nil, usagef("EVENT_JSON: %w: give one line of serve's events, quoted ('{...}')", err)
		}
		return &ev, nil
	case len(files) == 0:
		return nil, usagef("give one EVENT_JSON, or --events FILE with --conn-id N or --server-conn-id N")
	case cc.NArg() > 0:
		return nil, usagef("give EVENT_JSON or --events, not both")
	case byConn == byServer:
		return nil, usagef("with --events, give one of --conn-id N or --server-conn-id N")
	}
	var found *events.Event
	for _, name := range files {
		err := readEventsFile(cc, name, func(e *events.Event) {
			// The last match wins: server ids are reused after a restart.
			if byConn && e.ConnID == cc.Uint64("conn-id") ||
				byServer && uint64(e.ServerConnID) == cc.Uint64("server-conn-id") {
				found = e
			}
		}, stderr)
		if err != nil {
			return nil, err
		}
	}
	if found == nil {
		id := fmt.Sprintf("conn_id %d", cc.Uint64("conn-id"))
		if byServer {
			id = fmt.Sprintf("server_conn_id %d", cc.Uint64("server-conn-id"))
		}
		return nil, fmt.Errorf("no event with %s in %s: check the id (the N of \"Aborted connection N\" is a server_conn_id), "+
			"or add the rotated files, each with --events", id, strings.Join(files, ", "))
	}
	return found, nil
}

// writeExplanation prints ev for a person: who, what happened, why, what
// to change, and what the server logged.
func writeExplanation(w io.Writer, ev *events.Event) error {
	if ev.Cause == "" { // events written before causes existed
		explain.Annotate(ev)
	}
	c := explain.ByCode(ev.Cause)
	title := ev.Cause
	if c != nil {
		title = ev.Cause + ": " + c.Title
	}
	program := ev.Attrs["program_name"]
	lib := strings.TrimSpace(ev.Attrs["_client_name"] + " " + ev.Attrs["_client_version"])
	proc := ""
	if ev.ClientPID != 0 {
		proc = fmt.Sprintf("pid %d %s", ev.ClientPID, ev.ClientCmd)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "connection %d (server connection %d) to %s, %s, lasted %.0f ms\n",
		ev.ConnID, ev.ServerConnID, ev.Upstream, ev.StartedAt.UTC().Format("2006-01-02T15:04:05Z"), ev.DurationMS)
	fmt.Fprintf(&b, "who:     user %s db %s from %s\n", dash(ev.User), dash(ev.DB), dash(ev.ClientAddr))
	fmt.Fprintf(&b, "client:  %s; program %s; process %s\n", dash(lib), dash(program), dash(strings.TrimSpace(proc)))
	fmt.Fprintf(&b, "ended:   verdict %s, phase %s, ended by %s, close %s, idle %.0f ms before\n",
		ev.Verdict, dash(ev.Phase), dash(string(ev.EndedBy)), dash(string(ev.Close)), ev.IdleMS)
	if ev.LastCommand != "" || ev.Query != "" {
		fmt.Fprintf(&b, "last:    %s %s\n", ev.LastCommand, ev.Query)
	}
	if ev.ServerErrorCode != 0 {
		fmt.Fprintf(&b, "server:  ERR %d %s\n", ev.ServerErrorCode, ev.ServerErrorMessage)
	}
	if ev.Error != "" {
		fmt.Fprintf(&b, "error:   %s\n", ev.Error)
	}
	fmt.Fprintf(&b, "cause:   %s\n", title)
	fmt.Fprintf(&b, "advice:  %s\n", ev.Advice)
	if line := explain.ServerLogLine(ev); line != "" {
		if ev.Verdict == events.ServerClosed {
			line += " (if it was KILLed or shut down; a server that crashed logs nothing)"
		}
		fmt.Fprintf(&b, "MariaDB: %s\n", line)
	} else {
		fmt.Fprintf(&b, "MariaDB: logs nothing for it\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
