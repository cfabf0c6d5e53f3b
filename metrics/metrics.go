// Package metrics exports abortscope's Prometheus metrics. Labels stay
// low-cardinality (verdict, phase, direction, action); per-client detail
// lives in /clients and the events.
package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/abortscope/abortscope/proxy"
)

// Live is what the proxy tells at scrape time about the connections still
// open. *proxy.Proxy implements it.
type Live interface {
	ActiveByPhase() map[string]int
	LiveBytes() (fromClient, fromServer uint64)
}

var _ Live = (*proxy.Proxy)(nil)

// phases are the values of the phase label, all exported even at 0 so that
// dashboards see a flat line rather than a gap.
var phases = []string{"connect", "handshake", "idle", "command", "result", "infile", "binlog"}

// Metrics holds the collectors. It is an event sink (connections ended) and
// a fault observer; the forwarding path never touches it.
type Metrics struct {
	ended        *prometheus.CounterVec
	duration     prometheus.Histogram
	faults       *prometheus.CounterVec
	endedFromCli atomic.Uint64
	endedFromSrv atomic.Uint64
	live         Live
	activeDesc   *prometheus.Desc
	bytesDesc    *prometheus.Desc
}

var (
	_ proxy.EventSink     = (*Metrics)(nil)
	_ proxy.FaultObserver = (*Metrics)(nil)
)

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on reg.
func New(reg prometheus.Registerer, live Live) (*Metrics, error) {
	m := &Metrics{
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abortscope_connections_ended_total",
			Help: "Connections ended, by verdict (clean, client_no_quit, client_abort_in_flight, …).",
		}, []string{"verdict"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "abortscope_connection_duration_seconds",
			Help:    "How long connections lived, from accept to end.",
			Buckets: []float64{0.001, 0.01, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 28800},
		}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abortscope_faults_fired_total",
			Help: "Fault rules fired, by action (latency and bandwidth count every chunk they shape).",
		}, []string{"action"}),
		live: live,
		activeDesc: prometheus.NewDesc("abortscope_connections_active",
			"Connections being relayed, by phase.", []string{"phase"}, nil),
		bytesDesc: prometheus.NewDesc("abortscope_bytes_total",
			"Bytes relayed, by direction (client_to_server, server_to_client).", []string{"direction"}, nil),
	}
	for _, c := range []prometheus.Collector{m.ended, m.duration, m.faults, m,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Emit counts an ended connection.
func (m *Metrics) Emit(e *proxy.Event) {
	m.ended.WithLabelValues(e.Verdict).Inc()
	m.duration.Observe(e.DurationMS / 1000)
	m.endedFromCli.Add(e.BytesFromClient)
	m.endedFromSrv.Add(e.BytesFromServer)
}

// FaultFired counts a fault rule firing.
func (m *Metrics) FaultFired(action string) { m.faults.WithLabelValues(action).Inc() }

// Describe implements prometheus.Collector for the metrics computed at
// scrape time.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.activeDesc
	ch <- m.bytesDesc
}

// Collect implements prometheus.Collector: live connections per phase, and
// bytes of ended plus live connections.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	active := m.live.ActiveByPhase()
	for _, ph := range phases {
		ch <- prometheus.MustNewConstMetric(m.activeDesc, prometheus.GaugeValue, float64(active[ph]), ph)
	}
	cli, srv := m.live.LiveBytes()
	ch <- prometheus.MustNewConstMetric(m.bytesDesc, prometheus.CounterValue,
		float64(m.endedFromCli.Load()+cli), "client_to_server")
	ch <- prometheus.MustNewConstMetric(m.bytesDesc, prometheus.CounterValue,
		float64(m.endedFromSrv.Load()+srv), "server_to_client")
}
