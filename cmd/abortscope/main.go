// Command abortscope is a MySQL/MariaDB proxy that tells how every
// connection ended and who it was.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "abortscope:", err)
		os.Exit(1)
	}
}
