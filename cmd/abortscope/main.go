// Command abortscope is a MySQL/MariaDB proxy that tells how every
// connection ended and who it was.
package main

import (
	"fmt"
	"os"
)

// main runs the CLI and exits 0 when it succeeded, 2 when the command line
// cannot be run as written, 1 when anything else failed (exit.go).
func main() {
	if err := run(os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "abortscope:", err)
		os.Exit(exitCode(err))
	}
}
