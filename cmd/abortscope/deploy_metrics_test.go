package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/protocol"
)

// TestDeployDashboardMetrics: every metric the Grafana dashboard queries is
// one a running proxy exports, with the labels the queries group and match
// by. Two proxies run in-process, one after the other (urfave/cli's help
// flag is a global that two runs at once would race on): the demo
// (--keep), whose scripted clients end connections six ways and fire a
// fault, so the per-verdict and per-action series exist; then serve with
// the compose file's own command line (addresses moved to loopback, the
// token in a file of the secret's mode), scraped with the token as
// Prometheus scrapes it.
func TestDeployDashboardMetrics(t *testing.T) {
	d := loadDeployment(t)
	series := exportedSeries{}
	scrape := func(name, url, token string) {
		t.Helper()
		code, body := httpGet(t, url, token)
		if code != http.StatusOK {
			t.Fatalf("%s: GET /metrics: %d %s", name, code, body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: /metrics is not Prometheus text: %v", name, err)
		}
		series.add(fams)
	}

	demoAdmin := freeLoopbackAddr(t)
	demo := startInProcess(t, "abortscope", "demo", "--keep", "--listen", "127.0.0.1:0", "--admin", demoAdmin)
	demo.waitHealthy(t, "http://"+demoAdmin+"/healthz")
	scrape("demo", "http://"+demoAdmin+"/metrics", "")
	demo.stop(t)

	// serve, as the compose file runs it.
	dir := t.TempDir()
	tokenFile, _ := d.serve.get("admin-token-file")
	secret, _ := secretAt(d.project.Services["abortscope"], tokenFile)
	mode := os.FileMode(0o400)
	if secret.Mode != nil {
		mode = os.FileMode(*secret.Mode)
	}
	const token = "deploy-test-token"
	localToken := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(localToken, []byte(token+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	serveAdmin := freeLoopbackAddr(t)
	serve := startInProcess(t, d.serve.args(map[string]string{
		"listen":           "127.0.0.1:0",
		"admin":            serveAdmin,
		"upstream":         freeLoopbackAddr(t), // never dialed: no client connects
		"events":           filepath.Join(dir, "events.jsonl"),
		"admin-token-file": localToken,
	})...)
	serve.waitHealthy(t, "http://"+serveAdmin+"/healthz")
	// Prometheus needs the token: without it serve's /metrics says 401.
	if code, _ := httpGet(t, "http://"+serveAdmin+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("serve's /metrics without the token: %d, want 401", code)
	}
	scrape("serve", "http://"+serveAdmin+"/metrics", token)
	serve.stop(t)

	// Label values that exist though no connection has shown them yet.
	for _, v := range events.Verdicts() {
		series.value("abortscope_connections_ended_total", "verdict", string(v))
	}
	for _, a := range faults.Actions() {
		series.value("abortscope_faults_fired_total", "action", string(a))
	}
	for _, ph := range protocol.PhaseNames() {
		series.value("abortscope_connections_active", "phase", ph)
	}

	used := map[string]bool{}
	for _, p := range flattenPanels(d.board.Panels) {
		for _, tg := range p.Targets {
			q, err := parsePromQL(tg.Expr)
			if err != nil {
				t.Errorf("panel %q, query %s: %v\n  %s", p.Title, tg.RefID, err, tg.Expr)
				continue
			}
			for _, problem := range series.check(q) {
				t.Errorf("panel %q, query %s: %s\n  %s", p.Title, tg.RefID, problem, tg.Expr)
			}
			for _, s := range q.selectors {
				used[s.name] = true
			}
		}
	}
	// The panels issue 12 asks for.
	for _, m := range []string{"abortscope_connections_ended_total", "abortscope_connections_active",
		"abortscope_bytes_total", "abortscope_faults_fired_total"} {
		if !used[m] {
			t.Errorf("the dashboard has no panel reading %s", m)
		}
	}
	// The "skip mysql_close()" panels select exactly the client aborts.
	var aborts []string
	for _, v := range events.Verdicts() {
		if v.ClientAbort() {
			aborts = append(aborts, string(v))
		}
	}
	if !dashboardSelects(d.board, "abortscope_connections_ended_total", "verdict", aborts) {
		t.Errorf("no dashboard query selects exactly the client aborts verdict=~%q", strings.Join(aborts, "|"))
	}
}

// exportedSeries: series name → label → values seen. A histogram family F
// is the series F_bucket (with le), F_sum and F_count, as PromQL sees it.
type exportedSeries map[string]map[string]map[string]bool

func (e exportedSeries) value(series, label, value string) {
	if e[series] == nil {
		e[series] = map[string]map[string]bool{}
	}
	if label == "" {
		return
	}
	if e[series][label] == nil {
		e[series][label] = map[string]bool{}
	}
	e[series][label][value] = true
}

func (e exportedSeries) add(fams map[string]*dto.MetricFamily) {
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := func(series string) {
				e.value(series, "", "")
				for _, l := range m.GetLabel() {
					e.value(series, l.GetName(), l.GetValue())
				}
			}
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				labels(name + "_bucket")
				labels(name + "_sum")
				labels(name + "_count")
				for _, b := range m.GetHistogram().GetBucket() {
					e.value(name+"_bucket", "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
				}
				e.value(name+"_bucket", "le", "+Inf")
			case dto.MetricType_SUMMARY:
				labels(name)
				labels(name + "_sum")
				labels(name + "_count")
				for _, q := range m.GetSummary().GetQuantile() {
					e.value(name, "quantile", strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64))
				}
			default:
				labels(name)
			}
		}
	}
}

// check returns what is wrong with q against the exported series: a metric
// not exported, a matcher on a label it lacks or on a value it never has,
// a by/on label that not every metric of the query has.
func (e exportedSeries) check(q promQuery) []string {
	var problems []string
	for _, s := range q.selectors {
		labels, ok := e[s.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not exported (by the demo or serve)", s.name))
			continue
		}
		for _, m := range s.matchers {
			values, ok := labels[m.label]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s has no label %q (it has %v)", s.name, m.label, seriesKeys(labels)))
				continue
			}
			for _, v := range m.literalValues() {
				if !values[v] {
					problems = append(problems, fmt.Sprintf("%s{%s} never has the value %q (it has %v)", s.name, m.label, v, seriesKeys(values)))
				}
			}
		}
		for _, g := range q.grouping {
			if _, ok := labels[g]; !ok {
				problems = append(problems, fmt.Sprintf("by/on label %q: %s has no such label (it has %v)", g, s.name, seriesKeys(labels)))
			}
		}
	}
	return problems
}

func seriesKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dashboardSelects: some query of b matches metric's label with exactly
// values.
func dashboardSelects(b grafanaDashboard, metric, label string, values []string) bool {
	want := slices.Sorted(slices.Values(values))
	for _, p := range flattenPanels(b.Panels) {
		for _, tg := range p.Targets {
			q, err := parsePromQL(tg.Expr)
			if err != nil {
				continue
			}
			for _, s := range q.selectors {
				for _, m := range s.matchers {
					if s.name == metric && m.label == label && slices.Equal(slices.Sorted(slices.Values(m.literalValues())), want) {
						return true
					}
				}
			}
		}
	}
	return false
}

// inProcess is a run of the CLI in this test process, stopped by
// cancelling its context at the test's end.
type inProcess struct {
	args           []string
	cancel         context.CancelFunc
	done           chan struct{} // closed when runContext returned
	err            error
	stdout, stderr syncBuffer
	stopOnce       sync.Once // the error is reported once
}

func startInProcess(t *testing.T, args ...string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{args: args, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = runContext(ctx, args, &p.stdout, &p.stderr)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop cancels the run's context and waits for it to return, which it
// must without error.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		t.Fatalf("%q did not stop within 30 s of its context's end", p.args)
	}
	p.stopOnce.Do(func() {
		if p.err != nil {
			t.Errorf("%q ended with %v\n%s", p.args, p.err, p.stderr.String())
		}
	})
}

// waitHealthy polls url until it answers 200, the program ends, or 60 s
// pass (the demo's scripted clients run first; -race slows them).
func (p *inProcess) waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if code, _ := httpGet(t, url, ""); code == http.StatusOK {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%q ended before %s answered: %v\nstdout:\n%s\nstderr:\n%s", p.args, url, p.err, p.stdout.String(), p.stderr.String())
		case <-deadline.C:
			t.Fatalf("%q: %s did not answer 200 within 60 s\nstdout:\n%s\nstderr:\n%s", p.args, url, p.stdout.String(), p.stderr.String())
		case <-tick.C:
		}
	}
}

// httpGet returns the status and body of GET url (0 when it could not
// connect), with a bearer token if one is given.
func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The text format, which the test parses.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}

// freeLoopbackAddr is a loopback address with a port nothing listens on
// (bound, then closed: another process could take it in between, which a
// test on this machine's loopback does not).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
