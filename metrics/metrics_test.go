package metrics

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/abortscope/abortscope/events"
)

type fakeLive struct {
	active   map[string]int
	cli, srv uint64
}

func (f fakeLive) ActiveByPhase() map[string]int { return f.active }
func (f fakeLive) Bytes() (uint64, uint64)       { return f.cli, f.srv }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	stats := events.WriterStats{Written: 7, Dropped: 2, WriteErrors: 3}
	m, err := New(reg, fakeLive{active: map[string]int{"idle": 2, "result": 1}, cli: 310, srv: 1600},
		func() events.WriterStats { return stats })
	if err != nil {
		t.Fatal(err)
	}
	sinks := events.Sinks{m}
	for _, v := range []events.Verdict{"clean", "clean", "client_no_quit"} {
		sinks.Emit(&events.Event{Verdict: v, DurationMS: 1500, BytesFromClient: 100, BytesFromServer: 200})
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
# HELP abortscope_events_dropped_total Events not written because the writer's queue was full (a stuck --events reader).
# TYPE abortscope_events_dropped_total counter
abortscope_events_dropped_total 2
# HELP abortscope_events_write_errors_total Events lost because writing them to --events failed (the next one is tried).
# TYPE abortscope_events_write_errors_total counter
abortscope_events_write_errors_total 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"abortscope_connections_ended_total", "abortscope_faults_fired_total", "abortscope_bytes_total",
		"abortscope_events_dropped_total", "abortscope_events_write_errors_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m, "abortscope_connections_active"); n != len(phases) {
		t.Errorf("active has %d series, want one per phase (%d)", n, len(phases))
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP abortscope_connections_active Connections being relayed, by phase.
# TYPE abortscope_connections_active gauge
abortscope_connections_active{phase="auth"} 0
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
	if _, err := New(reg, fakeLive{}, nil); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}

// TestClientAborts: client aborts are counted by user, program and verdict
// (program_name, else _client_name); other verdicts are not; past
// MaxClients (user, program) pairs the rest go to "(other)", while pairs
// already seen keep their own series.
func TestClientAborts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, fakeLive{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	emit := func(user, program, client string, v events.Verdict) {
		attrs := map[string]string{"_client_name": client}
		if program != "" {
			attrs["program_name"] = program
		}
		m.Emit(&events.Event{User: user, Attrs: attrs, Verdict: v})
	}
	emit("billing", "billing-report", "pymysql", events.ClientNoQuit)
	emit("billing", "billing-report", "pymysql", events.ClientNoQuit)
	emit("billing", "billing-report", "pymysql", events.Clean)
	emit("etl", "", "Go-MySQL-Driver", events.ClientAbortInFlight)
	emit("etl", "", "Go-MySQL-Driver", events.ClientReset)
	want := `
# HELP abortscope_client_aborts_total Connections the client ended without COM_QUIT (client_no_quit, client_reset, client_abort_in_flight), by user, program (program_name, else _client_name) and verdict; pairs past the first 200 are counted as user and program "(other)".
# TYPE abortscope_client_aborts_total counter
abortscope_client_aborts_total{program="Go-MySQL-Driver",user="etl",verdict="client_abort_in_flight"} 1
abortscope_client_aborts_total{program="Go-MySQL-Driver",user="etl",verdict="client_reset"} 1
abortscope_client_aborts_total{program="billing-report",user="billing",verdict="client_no_quit"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "abortscope_client_aborts_total"); err != nil {
		t.Error(err)
	}

	for i := 0; i < MaxClients+50; i++ {
		emit("u"+strconv.Itoa(i), "p", "c", events.ClientReset)
	}
	emit("billing", "billing-report", "pymysql", events.ClientNoQuit) // seen before the cap
	if n := testutil.CollectAndCount(m.aborts); n != MaxClients+2 {
		t.Errorf("%d series, want %d (MaxClients pairs, one with two verdicts, and (other))", n, MaxClients+2)
	}
	if got := testutil.ToFloat64(m.aborts.WithLabelValues(Other, Other, "client_reset")); got != 50+2 {
		t.Errorf("(other) counted %v, want 52", got)
	}
	if got := testutil.ToFloat64(m.aborts.WithLabelValues("billing", "billing-report", "client_no_quit")); got != 3 {
		t.Errorf("billing-report after the cap: %v, want 3", got)
	}
}

// TestClientAbortsLabelLength: a client's long program_name is cut to
// MaxLabel bytes, on a character boundary.
func TestClientAbortsLabelLength(t *testing.T) {
	m, err := New(prometheus.NewRegistry(), fakeLive{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 100) // 200 bytes
	m.Emit(&events.Event{User: "u", Attrs: map[string]string{"program_name": long}, Verdict: events.ClientReset})
	want := strings.Repeat("é", MaxLabel/2)
	if got := testutil.ToFloat64(m.aborts.WithLabelValues("u", want, "client_reset")); got != 1 {
		t.Errorf("series with the program cut to %d bytes: %v, want 1", MaxLabel, got)
	}
}
