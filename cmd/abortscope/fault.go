package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/faults"
)

// faultCommand is `abortscope fault`: a client of a running serve's admin
// API (/faults).
func faultCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "fault",
		Usage:     "arm, list and remove fault rules in a running abortscope serve (started with --allow-faults)",
		UsageText: "abortscope fault command [command options] [arguments...]",
		Description: "Each command asks a running serve's admin API (--admin, default http://127.0.0.1:9307). That\n" +
			"serve must allow faults: start it with --allow-faults, or arm rules at start with --fault or\n" +
			"--faults-file, which imply it.\n\n" +
			"Examples:\n" +
			"   abortscope fault add --action reset_server --phase result --after-bytes 65536 --count 1\n" +
			"   abortscope fault list\n" +
			"   abortscope fault rm f1\n" +
			"   abortscope fault clear",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "arm a fault rule; flags are named like the rule's JSON fields",
				ArgsUsage: "[SPEC]",
				Description: "Arms one rule through POST /faults. SPEC, if given, is a rule in serve's --fault form,\n" +
					"e.g. 'action=reset_server,phase=result,after_bytes=65536,count=1'; flags given as well override it.\n" +
					"Each flag is a JSON field with dashes (--after-bytes); the JSON name works too (--after_bytes).\n" +
					"Prints the armed rule's id, for abortscope fault rm.\n\n" +
					"Examples:\n" +
					"   abortscope fault add --action reset_server --phase result --after-bytes 65536 --count 1\n" +
					"   abortscope fault add 'action=error,code=1213,query=^UPDATE,count=1'\n" +
					"   abortscope fault add --action latency --latency-ms 200 --jitter-ms 50 --attr program_name=worker --ttl 10m",
				Flags: append(append([]cli.Flag{adminFlag()}, adminTokenFlags()...), ruleFlags()...),
				Action: func(cc *cli.Context) error {
					return faultAdd(cc, stdout)
				},
			},
			{
				Name:  "list",
				Usage: "list the armed fault rules with how often each fired",
				Description: "Examples:\n" +
					"   abortscope fault list\n" +
					"   abortscope fault list --json --admin 127.0.0.1:9307",
				Flags: append([]cli.Flag{adminFlag(), &cli.BoolFlag{Name: "json", Usage: "print the rules as JSON, as GET /faults answers"}}, adminTokenFlags()...),
				Action: func(cc *cli.Context) error {
					return faultList(cc, stdout)
				},
			},
			{
				Name:      "rm",
				Usage:     "disarm fault rules by id",
				ArgsUsage: "ID...",
				Description: "The ids are the ones abortscope fault add printed and abortscope fault list shows.\n\n" +
					"Examples:\n" +
					"   abortscope fault rm f1\n" +
					"   abortscope fault rm --admin http://127.0.0.1:9307 f2 f3",
				Flags: append([]cli.Flag{adminFlag()}, adminTokenFlags()...),
				Action: func(cc *cli.Context) error {
					return faultRemove(cc, stdout)
				},
			},
			{
				Name:  "clear",
				Usage: "disarm every fault rule",
				Description: "Examples:\n" +
					"   abortscope fault clear\n" +
					"   abortscope fault clear --admin 127.0.0.1:9307 --admin-token-file /etc/abortscope/admin-token",
				Flags: append([]cli.Flag{adminFlag()}, adminTokenFlags()...),
				Action: func(cc *cli.Context) error {
					return faultClear(cc, stdout)
				},
			},
		},
	}
}

func adminFlag() cli.Flag {
	return &cli.StringFlag{Name: "admin", Value: "http://127.0.0.1:9307", Usage: "`URL` of serve's admin API (host:port works too)"}
}

// flagsFirst refuses a flag written after an argument: the CLI stops
// reading flags at the first argument, so it would be taken as one.
func flagsFirst(cc *cli.Context) error {
	for _, a := range cc.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return usagef("flag %s after an argument: put flags first: abortscope fault %s [flags] %s",
				a, cc.Command.Name, cc.Command.ArgsUsage)
		}
	}
	return nil
}

func faultAdd(cc *cli.Context, stdout io.Writer) error {
	if err := flagsFirst(cc); err != nil {
		return err
	}
	if cc.NArg() > 1 {
		return usagef("at most one SPEC argument, got %d: quote a spec that holds spaces", cc.NArg())
	}
	rule, err := ruleFromFlags(cc)
	if err != nil {
		return err
	}
	c, err := newAdminClient(cc, cc.String("admin"))
	if err != nil {
		return err
	}
	var armed faults.Rule
	if err := c.call(cc.Context, http.MethodPost, "/faults", rule, http.StatusCreated, &armed); err != nil {
		// The server judges a rule (this client sends the fields given):
		// one it refuses as invalid is a command line that cannot run.
		var ae *admin.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
			return asUsage(err)
		}
		return err
	}
	fmt.Fprintf(stdout, "armed %s name=%s action=%s\n", armed.ID, armed.Name, armed.Action)
	return nil
}

func faultList(cc *cli.Context, stdout io.Writer) error {
	c, err := newAdminClient(cc, cc.String("admin"))
	if err != nil {
		return err
	}
	var rules []faults.Rule
	if err := c.call(cc.Context, http.MethodGet, "/faults", nil, http.StatusOK, &rules); err != nil {
		return err
	}
	if cc.Bool("json") {
		return printJSON(stdout, rules)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tACTION\tMATCH\tTRIGGER\tFIRED")
	for _, r := range rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.ID, r.Name, describeAction(r), describeMatch(r), describeTrigger(r), r.Fired)
	}
	return tw.Flush()
}

func faultRemove(cc *cli.Context, stdout io.Writer) error {
	if err := flagsFirst(cc); err != nil {
		return err
	}
	if cc.NArg() == 0 {
		return usagef("give the id of a rule to remove (abortscope fault list shows them), or use abortscope fault clear")
	}
	c, err := newAdminClient(cc, cc.String("admin"))
	if err != nil {
		return err
	}
	for _, id := range cc.Args().Slice() {
		if err := c.call(cc.Context, http.MethodDelete, "/faults/"+url.PathEscape(id), nil, http.StatusNoContent, nil); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		fmt.Fprintf(stdout, "removed %s\n", id)
	}
	return nil
}

func faultClear(cc *cli.Context, stdout io.Writer) error {
	c, err := newAdminClient(cc, cc.String("admin"))
	if err != nil {
		return err
	}
	var res struct {
		Removed int `json:"removed"`
	}
	if err := c.call(cc.Context, http.MethodDelete, "/faults", nil, http.StatusOK, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed %d rule(s)\n", res.Removed)
	return nil
}

// describeAction is the action with its parameters, for the list table.
func describeAction(r faults.Rule) string {
	parts := []string{string(r.Action)}
	add := func(k string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	add("duration_ms", r.DurationMS, r.DurationMS != 0)
	add("code", r.Code, r.Code != 0)
	add("latency_ms", r.LatencyMS, r.LatencyMS != 0)
	add("jitter_ms", r.JitterMS, r.JitterMS != 0)
	add("rate_kbps", r.RateKbps, r.RateKbps != 0)
	add("direction", r.Direction, r.Direction != "")
	add("then_close", r.ThenClose, r.ThenClose)
	return strings.Join(parts, " ")
}

// describeMatch is who a rule applies to; "any" when it matches everyone.
func describeMatch(r faults.Rule) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("user", r.User)
	add("db", r.DB)
	add("client", r.Client)
	for _, k := range sortedKeys(r.Attrs) {
		add("attrs."+k, r.Attrs[k])
	}
	if r.Query != "" {
		add("query", fmt.Sprintf("%q", r.Query))
	}
	if r.ConnID != 0 {
		add("conn_id", fmt.Sprint(r.ConnID))
	}
	if r.ServerConnID != 0 {
		add("server_conn_id", fmt.Sprint(r.ServerConnID))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// describeTrigger is when a rule fires; "always" when on every chance.
func describeTrigger(r faults.Rule) string {
	var parts []string
	add := func(k string, v any, set bool) {
		if set {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	add("phase", r.Phase, r.Phase != "")
	add("after_bytes", r.AfterBytes, r.AfterBytes != 0)
	add("after_rows", r.AfterRows, r.AfterRows != 0)
	add("nth_command", r.NthCommand, r.NthCommand != 0)
	if r.Probability != nil {
		add("probability", *r.Probability, true)
	}
	add("count", r.Count, r.Count != 0)
	add("ttl", time.Duration(r.TTL), r.TTL != 0)
	if len(parts) == 0 {
		return "always"
	}
	return strings.Join(parts, " ")
}
