package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// The admin API's bearer token: serve requires it on every endpoint but
// /healthz when given one (and must be given one to listen beyond
// loopback); the commands that call the API send it.

// adminTokenFlags are the token flags, for serve and for the API's clients.
func adminTokenFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "admin-token", EnvVars: []string{"ABORTSCOPE_ADMIN_TOKEN"}, Usage: "bearer `TOKEN` of the admin API (prefer --admin-token-file or the environment: a flag shows in ps)"},
		&cli.StringFlag{Name: "admin-token-file", Usage: "`FILE` holding the admin API's bearer token (readable by its owner only)"},
	}
}

// adminToken returns the token the flags give, or "".
func adminToken(cc *cli.Context) (string, error) {
	tok, file := cc.String("admin-token"), cc.String("admin-token-file")
	switch {
	case tok != "" && file != "":
		return "", usagef("--admin-token and --admin-token-file both given: give one, not both (the file keeps the token out of ps)")
	case file == "":
		return tok, nil
	}
	fi, err := os.Stat(file)
	if err != nil {
		return "", fileError("--admin-token-file", file, err, "a file holding the admin API's token, mode 600")
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("--admin-token-file %s: mode %04o lets others read the token; chmod 600 it", file, fi.Mode().Perm())
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fileError("--admin-token-file", file, err, "a file holding the admin API's token, mode 600")
	}
	tok = strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("--admin-token-file %s is empty: write the token into it (e.g. openssl rand -hex 32 > %[1]s)", file)
	}
	return tok, nil
}
