package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
)

// faultFlags are serve's fault-injection flags.
func faultFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "allow-faults", Usage: "enable fault injection: the admin API's /faults endpoints (403 without it)"},
		&cli.StringSliceFlag{Name: "fault", Usage: "arm a fault rule at start, a `SPEC` of key=value pairs, e.g. 'action=reset_server,phase=result,after_bytes=65536,count=1' (repeatable; implies --allow-faults)"},
		&cli.StringFlag{Name: "faults-file", Usage: "arm the rules in `FILE`, a JSON array of rules as POST /faults takes them (implies --allow-faults)"},
		&cli.Int64Flag{Name: "seed", Usage: "the `N` that seeds the random source behind rules' probability and latency jitter, to repeat a run; if unset, taken from the clock and logged"},
	}
}

// setUpFaults builds the fault set from serve's flags and arms the rules of
// --fault and --faults-file. allowed reports whether fault injection is on;
// the set is returned either way, for the admin API to answer 403 with.
func setUpFaults(cc *cli.Context, log *zap.Logger) (set *faults.Set, allowed bool, err error) {
	specs := cc.StringSlice("fault")
	file := cc.String("faults-file")
	allowed = cc.Bool("allow-faults") || len(specs) > 0 || file != ""

	seed, seedFrom := cc.Int64("seed"), "--seed"
	if !cc.IsSet("seed") {
		seed, seedFrom = time.Now().UnixNano(), "clock"
	}
	set = faults.NewSet(seed, nil)
	if !allowed {
		if cc.IsSet("seed") {
			log.Warn("--seed has no effect without --allow-faults")
		}
		return set, false, nil
	}

	var rules []faults.Rule
	for _, spec := range specs {
		r, err := faults.ParseSpec(spec)
		if err == nil {
			r, err = set.Add(r)
		}
		if err != nil {
			// abortscope fault add --help lists every field.
			return nil, false, usagef("--fault %q: %w (the fields are fault add's flags, with _ for -: abortscope fault add --help)", spec, err)
		}
		rules = append(rules, r)
	}
	if file != "" {
		fromFile, err := loadFaultsFile(set, file)
		if err != nil {
			return nil, false, err
		}
		rules = append(rules, fromFile...)
	}
	log.Info("fault injection on", zap.Int64("seed", seed), zap.String("seed_from", seedFrom), zap.Int("rules", len(rules)))
	for _, r := range rules {
		log.Info("fault armed", zap.String("id", r.ID), zap.String("name", r.Name), zap.String("action", string(r.Action)))
	}
	return set, true, nil
}

// loadFaultsFile arms each rule of a JSON array in path. Errors name the
// flag, the file, the rule (from 1) and the field.
func loadFaultsFile(set *faults.Set, path string) ([]faults.Rule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fileError("--faults-file", path, err, "a JSON file holding an array of rules, as POST /faults takes them")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("--faults-file %s: want a JSON array of rules, as POST /faults takes them ([{\"action\": \"reset_server\", \"count\": 1}]): %w", path, err)
	}
	out := make([]faults.Rule, 0, len(raw))
	for i, msg := range raw {
		r, err := faults.DecodeRule(bytes.NewReader(msg))
		if err == nil {
			r, err = set.Add(r)
		}
		if err != nil {
			return nil, fmt.Errorf("--faults-file %s: rule %d: %w (fix it in the file; abortscope fault add --help describes the fields)", path, i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
