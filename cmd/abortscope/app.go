package main

import (
	"context"
	"io"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run builds the CLI and runs it with args; main is a thin wrapper so tests
// can run the whole program in-process.
func run(args []string, stdout, stderr io.Writer) error {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run under ctx: serve stops when ctx ends, as it does on
// SIGINT or SIGTERM (tests stop it this way; the binary uses the signals).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	app := &cli.App{
		Name:      "abortscope",
		Usage:     "a MySQL/MariaDB proxy that tells how every connection ended, and who it was",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*cli.Command{
			serveCommand(stdout, stderr),
			faultCommand(stdout),
			reportCommand(stdout, stderr),
			correlateCommand(stdout, stderr),
			explainCommand(stdout, stderr),
			demoCommand(stdout, stderr),
		},
		HideHelpCommand: true,
		// A --fault spec and an --attr KEY=VALUE hold commas of their own.
		DisableSliceFlagSeparator: true,
	}
	return app.RunContext(ctx, args)
}
