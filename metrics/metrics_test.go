package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/abortscope/abortscope/proxy"
)

type fakeLive struct {
	active   map[string]int
	cli, srv uint64
}

func (f fakeLive) ActiveByPhase() map[string]int { return f.active }
func (f fakeLive) LiveBytes() (uint64, uint64)   { return f.cli, f.srv }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, fakeLive{active: map[string]int{"idle": 2, "result": 1}, cli: 10, srv: 1000})
	if err != nil {
		t.Fatal(err)
	}
	sinks := proxy.Sinks{m}
	for _, v := range []string{"clean", "clean", "client_no_quit"} {
		sinks.Emit(&proxy.Event{Verdict: v, DurationMS: 1500, BytesFromClient: 100, BytesFromServer: 200})
	}
	sinks.FaultFired("latency")
	sinks.FaultFired("latency")
	sinks.FaultFired("reset_server")

	want := `
# HELP abortscope_connections_ended_total Connections ended, by verdict (clean, client_no_quit, client_abort_in_flight, …).
# TYPE abortscope_connections_ended_total counter
abortscope_connections_ended_total{verdict="clean"} 2
abortscope_connections_ended_total{verdict="client_no_quit"} 1
# HELP abortscope_faults_fired_total Fault rules fired, by action (latency and bandwidth count every chunk they shape).
# TYPE abortscope_faults_fired_total counter
abortscope_faults_fired_total{action="latency"} 2
abortscope_faults_fired_total{action="reset_server"} 1
# HELP abortscope_bytes_total Bytes relayed, by direction (client_to_server, server_to_client).
# TYPE abortscope_bytes_total counter
abortscope_bytes_total{direction="client_to_server"} 310
abortscope_bytes_total{direction="server_to_client"} 1600
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"abortscope_connections_ended_total", "abortscope_faults_fired_total", "abortscope_bytes_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "abortscope_connections_active"); n != len(phases) {
		t.Errorf("active has %d series, want one per phase (%d)", n, len(phases))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP abortscope_connections_active Connections being relayed, by phase.
# TYPE abortscope_connections_active gauge
abortscope_connections_active{phase="binlog"} 0
abortscope_connections_active{phase="command"} 0
abortscope_connections_active{phase="connect"} 0
abortscope_connections_active{phase="handshake"} 0
abortscope_connections_active{phase="idle"} 2
abortscope_connections_active{phase="infile"} 0
abortscope_connections_active{phase="result"} 1
`), "abortscope_connections_active"); err != nil {
		t.Error(err)
	}
	if _, err := New(reg, fakeLive{}); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
