package main

import (
	"encoding/json"
	"errors"
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
			"--markdown-causes prints the cause table; --readme FILE rewrites the table in FILE.",
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
			return fmt.Errorf("explain --readme: %w", err)
		}
		doc, err := explain.ReplaceBlock(string(b), explain.Markdown())
		if err != nil {
			return fmt.Errorf("explain --readme %s: %w", name, err)
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
			return nil, errors.New("explain: --conn-id and --server-conn-id go with --events")
		}
		var ev events.Event
		if err := json.Unmarshal([]byte(cc.Args().First()), &ev); err != nil {
			return nil, fmt.Errorf("explain: EVENT_JSON: %w", err)
		}
		return &ev, nil
	case len(files) == 0:
		return nil, errors.New("explain: give one EVENT_JSON, or --events FILE with --conn-id N or --server-conn-id N")
	case cc.NArg() > 0:
		return nil, errors.New("explain: give EVENT_JSON or --events, not both")
	case byConn == byServer:
		return nil, errors.New("explain: with --events, give --conn-id N or --server-conn-id N")
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
		return nil, errors.New("explain: no such connection in " + strings.Join(files, ", "))
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
