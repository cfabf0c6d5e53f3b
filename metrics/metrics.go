// Package metrics exports abortscope's Prometheus metrics. Labels stay
// low-cardinality (verdict, phase, direction, action); the one per-client
// counter, client aborts by user and program, is capped at MaxClients label
// pairs. Full per-client detail lives in /clients and the events.
package metrics

import (
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxy"
)

// Live is what the proxy tells at scrape time about the connections still
// open. *proxy.Proxy implements it.
type Live interface {
	ActiveByPhase() map[string]int
	// Bytes is every connection's bytes, ended and live: a counter
	// that never goes down.
	Bytes() (fromClient, fromServer uint64)
}

var _ Live = (*proxy.Proxy)(nil)

// phases are the values of the phase label, all exported even at 0 so that
// dashboards see a flat line rather than a gap.
var phases = protocol.PhaseNames()

// Metrics holds the collectors. It is an event sink (connections ended) and
// a fault observer; the forwarding path never touches it.
type Metrics struct {
	ended        *prometheus.CounterVec
	aborts       *prometheus.CounterVec
	clientsMu    sync.Mutex
	clients      map[[2]string]bool // (user, program) pairs aborts has
	duration     prometheus.Histogram
	faults       *prometheus.CounterVec
	live         Live
	writer       func() events.WriterStats
	activeDesc   *prometheus.Desc
	bytesDesc    *prometheus.Desc
	writeErrDesc *prometheus.Desc
	droppedDesc  *prometheus.Desc
}

var (
	_ events.Sink          = (*Metrics)(nil)
	_ events.FaultObserver = (*Metrics)(nil)
)

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on reg. writer, if not nil, gives the events writer's
// counters (abortscope_events_write_errors_total, _dropped_total).
func New(reg prometheus.Registerer, live Live, writer func() events.WriterStats) (*Metrics, error) {
	m := &Metrics{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abortscope_connections_ended_total",
			Help: "Connections ended, by verdict (clean, client_no_quit, client_abort_in_flight, …).",
		}, []string{"verdict"}),
		aborts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abortscope_client_aborts_total",
			Help: fmt.Sprintf("Connections the client ended without COM_QUIT (client_no_quit, client_reset, client_abort_in_flight), by user, program (program_name, else _client_name) and verdict; pairs past the first %d are counted as user and program %q.", MaxClients, Other),
		}, []string{"user", "program", "verdict"}),
		clients: map[[2]string]bool{},
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abortscope_connection_duration_seconds",
			Help:    "How long connections lived, from accept to end.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 28800},
		}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abortscope_faults_fired_total",
			Help: "Fault rules fired, by action (latency and bandwidth count every chunk they shape).",
		}, []string{"action"}),
		live:   live,
		writer: writer,
		writeErrDesc: prometheus.NewDesc("abortscope_events_write_errors_total",
			"Events lost because writing them to --events failed (the next one is tried).", nil, nil),
		droppedDesc: prometheus.NewDesc("abortscope_events_dropped_total",
			"Events not written because the writer's queue was full (a stuck --events reader).", nil, nil),
		activeDesc: prometheus.NewDesc("abortscope_connections_active",
			"Connections being relayed, by phase.", []string{"phase"}, nil),
		bytesDesc: prometheus.NewDesc("abortscope_bytes_total",
			"Bytes relayed, by direction (client_to_server, server_to_client).", []string{"direction"}, nil),
	}
	for _, c := range []prometheus.Collector{m.ended, m.aborts, m.duration, m.faults, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// MaxClients bounds the (user, program) label pairs of
// abortscope_client_aborts_total; later pairs are counted as "(other)".
const MaxClients = 200

// Other is the user and program of client aborts past MaxClients pairs.
const Other = "(other)"

// Emit counts an ended connection.
func (m *Metrics) Emit(e *events.Event) {
	m.ended.WithLabelValues(string(e.Verdict)).Inc()
	m.duration.Observe(e.DurationMS / 1000)
	if e.Verdict.ClientAbort() {
		user, program := m.client(e)
		m.aborts.WithLabelValues(user, program, string(e.Verdict)).Inc()
	}
}

// client names the client of an abort for the labels: its user ("" for a
// TLS passthrough connection, whose login is not seen) and program, or
// Other once MaxClients pairs have been seen.
func (m *Metrics) client(e *events.Event) (user, program string) {
	program = e.Attrs["program_name"]
	if program == "" {
		program = e.Attrs["_client_name"]
	}
	// Both come from the client: a label value is cut to MaxLabel bytes.
	user = cut(e.User)
	program = cut(program)
	key := [2]string{user, program}
	m.clientsMu.Lock()
	defer m.clientsMu.Unlock()
	if !m.clients[key] {
		if len(m.clients) >= MaxClients {
			return Other, Other
		}
		m.clients[key] = true
	}
	return user, program
}

// MaxLabel bounds the bytes of a user or program label value.
const MaxLabel = 64

// cut shortens s to at most MaxLabel bytes, on a UTF-8 boundary.
func cut(s string) string {
	if len(s) <= MaxLabel {
		return s
	}
	i := MaxLabel
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// FaultFired counts a fault rule firing.
func (m *Metrics) FaultFired(action string) { m.faults.WithLabelValues(action).Inc() }

// Describe implements prometheus.Collector for the metrics computed at
// scrape time.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.activeDesc
	ch <- m.bytesDesc
	if m.writer != nil {
		ch <- m.writeErrDesc
		ch <- m.droppedDesc
	}
}

// Collect implements prometheus.Collector: live connections per phase, and
// bytes of ended plus live connections.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	active := m.live.ActiveByPhase()
	for _, ph := range phases {
		ch <- prometheus.MustNewConstMetric(m.activeDesc, prometheus.GaugeValue, float64(active[ph]), ph)
	}
	cli, srv := m.live.Bytes()
	ch <- prometheus.MustNewConstMetric(m.bytesDesc, prometheus.CounterValue, float64(cli), "client_to_server")
	ch <- prometheus.MustNewConstMetric(m.bytesDesc, prometheus.CounterValue, float64(srv), "server_to_client")
	if m.writer != nil {
		st := m.writer()
		ch <- prometheus.MustNewConstMetric(m.writeErrDesc, prometheus.CounterValue, float64(st.WriteErrors))
		ch <- prometheus.MustNewConstMetric(m.droppedDesc, prometheus.CounterValue, float64(st.Dropped))
	}
}
