package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// What a dashboard's PromQL reads: metric names, label matchers and the
// labels of by/without/on clauses. No full parser: enough to check the
// queries against the metrics a proxy exports.

// TestDeployDashboardCheckCatches: TestDeployDashboardMetrics's check fails
// on the mistakes it is there for.
func TestDeployDashboardCheckCatches(t *testing.T) {
	series := exportedSeries{}
	series.value("abortscope_connections_ended_total", "verdict", "clean")
	series.value("abortscope_connections_ended_total", "verdict", "client_no_quit")
	series.value("abortscope_connection_duration_seconds_bucket", "le", "+Inf")
	series.value("abortscope_connection_duration_seconds_count", "", "")
	for _, tt := range []struct {
		expr, want string // want: "" for no problem
	}{
		{`sum by (verdict) (rate(abortscope_connections_ended_total[$__rate_interval]))`, ""},
		{`sum by (verdict) (rate(abortscope_connection_ended_total[5m]))`, "abortscope_connection_ended_total is not exported"},
		{`sum by (verdikt) (rate(abortscope_connections_ended_total[5m]))`, `by/on label "verdikt"`},
		{`abortscope_connections_ended_total{verdikt="clean"}`, `label "verdikt"`},
		{`abortscope_connections_ended_total{verdict=~"clean|client_noquit"}`, `"client_noquit"`},
		{`histogram_quantile(0.9, sum by (le) (rate(abortscope_connection_duration_seconds_bucket[5m])))`, ""},
		{`sum(rate(abortscope_connection_duration_seconds[5m]))`, "abortscope_connection_duration_seconds is not exported"},
		{`sum by (le) (rate(abortscope_connection_duration_seconds_count[5m]))`, `by/on label "le"`},
		{`rat(abortscope_connections_ended_total[5m])`, `"rat" is no PromQL function`},
	} {
		q, err := parsePromQL(tt.expr)
		var problems []string
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = series.check(q)
		}
		got := strings.Join(problems, "; ")
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n  problems %q, want one with %q", tt.expr, got, tt.want)
		}
	}
}

// promQuery is what a PromQL expression reads: its series selectors and
// the labels of its by/without/on/ignoring/group_* clauses.
type promQuery struct {
	selectors []promSelector
	grouping  []string
}

type promSelector struct {
	name     string
	matchers []promMatcher
}

type promMatcher struct{ label, op, value string }

var plainValue = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// literalValues are the label values a = or =~ matcher names when it is a
// plain alternation (a|b|c); none for other regexps and negations.
func (m promMatcher) literalValues() []string {
	switch m.op {
	case "=":
		return []string{m.value}
	case "=~":
		parts := strings.Split(m.value, "|")
		for _, p := range parts {
			if !plainValue.MatchString(p) {
				return nil
			}
		}
		return parts
	}
	return nil
}

// promFunctions are PromQL's functions and aggregations: a name before "("
// that is none of them is a typo.
var promFunctions = func() map[string]bool {
	fs := map[string]bool{}
	for _, f := range strings.Fields(`abs absent absent_over_time acos acosh asin asinh atan atanh avg avg_over_time
		bottomk ceil changes clamp clamp_max clamp_min cos cosh count count_over_time count_values day_of_month
		day_of_week day_of_year days_in_month deg delta deriv double_exponential_smoothing exp floor group
		histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar
		histogram_sum holt_winters hour idelta increase info irate label_join label_replace last_over_time limit_ratio
		limitk ln log10 log2 mad_over_time max max_over_time min min_over_time minute month pi predict_linear
		present_over_time quantile quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_by_label
		sort_by_label_desc sort_desc sqrt stddev stddev_over_time stdvar stdvar_over_time sum sum_over_time tan
		tanh time timestamp topk vector year`) {
		fs[f] = true
	}
	return fs
}()

// promAggregations take a by/without clause before their arguments.
var promAggregations = map[string]bool{"sum": true, "avg": true, "min": true, "max": true, "count": true,
	"stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true, "count_values": true,
	"group": true, "limitk": true, "limit_ratio": true}

// promToken is a PromQL token: an identifier, a string (unquoted), or any
// other character run that matters here.
type promToken struct {
	kind byte // 'i' identifier, 's' string, 'p' punctuation or operator, 'n' number, '$' Grafana variable
	text string
}

// lexPromQL splits expr into tokens, leaving out range and subquery
// brackets ([5m], [$__rate_interval]) and comments.
func lexPromQL(expr string) ([]promToken, error) {
	var toks []promToken
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '[':
			j := strings.IndexByte(expr[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += j + 1
		case c == '$':
			j := i + 1
			if j < len(expr) && expr[j] == '{' {
				k := strings.IndexByte(expr[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unclosed ${ at %d", i)
				}
				j += k + 1
			} else {
				for j < len(expr) && isIdent(expr[j], false) {
					j++
				}
			}
			toks = append(toks, promToken{'$', expr[i:j]})
			i = j
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unclosed string at %d", i)
			}
			raw := expr[i : j+1]
			if c == '\'' {
				raw = `"` + strings.ReplaceAll(raw[1:len(raw)-1], `"`, `\"`) + `"`
			}
			s, err := strconv.Unquote(raw)
			if err != nil {
				return nil, fmt.Errorf("string %s: %w", expr[i:j+1], err)
			}
			toks = append(toks, promToken{'s', s})
			i = j + 1
		case isIdent(c, true):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			toks = append(toks, promToken{'i', expr[i:j]})
			i = j
		case (c >= '0' && c <= '9') || c == '.':
			j := i
			for j < len(expr) && (isIdent(expr[j], false) || expr[j] == '.') {
				j++ // 0.95, 1e3, 0x1f, 5m
			}
			toks = append(toks, promToken{'n', expr[i:j]})
			i = j
		default:
			if i+1 < len(expr) {
				if two := expr[i : i+2]; two == "=~" || two == "!~" || two == "!=" || two == "==" || two == ">=" || two == "<=" {
					toks = append(toks, promToken{'p', two})
					i += 2
					continue
				}
			}
			toks = append(toks, promToken{'p', string(c)})
			i++
		}
	}
	return toks, nil
}

// parsePromQL finds what expr reads. It is no full parser: it knows
// selectors, function calls and grouping clauses, which is what the
// dashboard's checks need.
func parsePromQL(expr string) (promQuery, error) {
	var q promQuery
	toks, err := lexPromQL(expr)
	if err != nil {
		return q, err
	}
	next := func(i int) promToken {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return promToken{}
	}
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch {
		case tk.kind == 'i' && slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, tk.text):
			if next(i).text != "(" {
				continue // group_left without labels
			}
			for i += 2; i < len(toks) && toks[i].text != ")"; i++ {
				if toks[i].kind == 'i' {
					q.grouping = append(q.grouping, toks[i].text)
				} else if toks[i].text != "," {
					return q, fmt.Errorf("%s (…): unexpected %q", tk.text, toks[i].text)
				}
			}
		case tk.kind == 'i' && slices.Contains([]string{"and", "or", "unless", "bool", "offset", "Inf", "NaN", "inf", "nan", "atan2"}, tk.text):
		case tk.kind == 'i' && (next(i).text == "by" || next(i).text == "without"):
			// sum by (…) (…): the clause comes before the arguments.
			if !promAggregations[tk.text] {
				return q, fmt.Errorf("%q is no PromQL aggregation (before %s)", tk.text, next(i).text)
			}
		case tk.kind == 'i' && next(i).text == "(":
			if !promFunctions[tk.text] {
				return q, fmt.Errorf("%q is no PromQL function", tk.text)
			}
		case tk.kind == 'i' || (tk.kind == 'p' && tk.text == "{"):
			s := promSelector{}
			if tk.kind == 'i' {
				s.name = tk.text
				if next(i).text != "{" {
					q.selectors = append(q.selectors, s)
					continue
				}
				i++
			}
			for i++; i < len(toks) && toks[i].text != "}"; i++ {
				if toks[i].text == "," {
					continue
				}
				if i+2 >= len(toks) || toks[i].kind != 'i' || toks[i+1].kind != 'p' || toks[i+2].kind != 's' {
					return q, fmt.Errorf("label matcher at %q: want label op \"value\"", toks[i].text)
				}
				m := promMatcher{label: toks[i].text, op: toks[i+1].text, value: toks[i+2].text}
				if !slices.Contains([]string{"=", "!=", "=~", "!~"}, m.op) {
					return q, fmt.Errorf("label matcher %s%s: no such operator", m.label, m.op)
				}
				if m.label == "__name__" && m.op == "=" {
					s.name = m.value
				} else {
					s.matchers = append(s.matchers, m)
				}
				i += 2
			}
			if s.name == "" {
				return q, fmt.Errorf("a selector without a metric name")
			}
			q.selectors = append(q.selectors, s)
		}
	}
	if len(q.selectors) == 0 {
		return q, fmt.Errorf("no metric in the query")
	}
	return q, nil
}
