package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build sets it from git describe). When it is empty the module version in
// the binary's build info is used (see version.go).
var version string

// run builds the CLI and runs it with args; main is a thin wrapper so tests
// can run the whole program in-process.
func run(args []string, stdout, stderr io.Writer) error {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run under ctx: serve stops when ctx ends, as it does on
// SIGINT or SIGTERM (tests stop it this way; the binary uses the signals).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return newApp(args, stdout, stderr, appVersion()).RunContext(ctx, args)
}

// appDescription is the top-level --help's text under the command list's
// usage line.
const appDescription = `Put abortscope between your clients and MariaDB/MySQL: each connection that ends becomes one
JSON event saying who the client was (user, address, program, process), how the connection
ended and why, and what to change. Every command has --help with examples.

Exit status: 0 done; 1 failed (a port in use, a file missing, the admin API unreachable);
2 the command line cannot run as written (unknown command or flag, bad value, missing argument).

Examples:
   abortscope demo                       # watch it judge six endings, no database needed
   abortscope serve --upstream 127.0.0.1:3306 --events events.jsonl
   abortscope report --events events.jsonl --since 24h
   abortscope explain --events events.jsonl --server-conn-id 42
   abortscope serve --help`

// newApp builds the CLI. args are the ones it will run with: shell
// completion reads the word being completed from them (urfave's own
// completer reads os.Args). ver is what --version and the help print.
func newApp(args []string, stdout, stderr io.Writer, ver string) *cli.App {
	app := &cli.App{
		Name:        "abortscope",
		HelpName:    "abortscope", // not os.Args[0]: the help reads the same from go run, a test or bin/
		Usage:       "a MySQL/MariaDB proxy that tells how every connection ended, and who it was",
		Description: appDescription,
		Version:     ver,
		Writer:      stdout,
		ErrWriter:   stderr,
		Commands: []*cli.Command{
			serveCommand(stdout, stderr),
			faultCommand(stdout),
			reportCommand(stdout, stderr),
			correlateCommand(stdout, stderr),
			explainCommand(stdout, stderr),
			demoCommand(stdout, stderr),
			healthcheckCommand(stdout),
			versionCommand(stdout),
			completionCommand(stdout),
			docsCommand(stdout),
		},
		HideHelpCommand: true,
		// A --fault spec and an --attr KEY=VALUE hold commas of their own.
		DisableSliceFlagSeparator: true,
		// abortscope ... --generate-bash-completion lists what may come
		// next; `abortscope completion bash|zsh` prints the shell's side.
		EnableBashCompletion: true,
		BashComplete:         completer(args, stdout),
		OnUsageError:         onUsageError,
		Action:               groupAction,
		// main picks the exit status from the error (exit.go); urfave's
		// default handler would call os.Exit on a cli.ExitCoder itself.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, c := range app.Commands {
		polish(c, args, stdout)
	}
	return app
}

// polish gives c and its subcommands what every command has: errors that
// name the command and are usage errors when the command line is at fault,
// completion, and no `help` subcommand (--help and -h are the way).
func polish(c *cli.Command, args []string, stdout io.Writer) {
	c.HideHelpCommand = true
	c.OnUsageError = onUsageError
	c.BashComplete = completer(args, stdout)
	if len(c.Subcommands) > 0 {
		c.Action = groupAction
		for _, s := range c.Subcommands {
			polish(s, args, stdout)
		}
		return
	}
	action := c.Action
	c.Action = func(cc *cli.Context) error {
		if c.ArgsUsage == "" && cc.NArg() > 0 {
			// The flags end at the first argument; anything after it is
			// an argument too, so say which word started it.
			return commandError(cc, usagef("unexpected argument %q: %s takes only flags, each followed by its value "+
				"(a boolean flag takes none: --name, or --name=false)", cc.Args().First(), commandPath(cc)))
		}
		return commandError(cc, action(cc))
	}
}

// groupAction runs for abortscope, or a group such as abortscope fault,
// given no command: it prints the help and succeeds (urfave's default,
// kept: asking for nothing is a way to ask what there is). A word that is
// no command is a usage error.
func groupAction(cc *cli.Context) error {
	if !cc.Args().Present() {
		if cc.Command.HelpName == "abortscope" {
			return cli.ShowAppHelp(cc)
		}
		return cli.ShowSubcommandHelp(cc)
	}
	var names []string
	for _, c := range cc.Command.VisibleCommands() {
		names = append(names, c.Name)
	}
	typed, hint := cc.Args().First(), ""
	if s := closest(names, typed); s != "" {
		hint = fmt.Sprintf(" (did you mean %s?)", s)
	}
	return commandError(cc, usagef("unknown command %q%s; the commands are %s", typed, hint, strings.Join(names, ", ")))
}
