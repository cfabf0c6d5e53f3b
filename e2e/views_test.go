package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/metrics"
	"github.com/abortscope/abortscope/proxy"
)

// viewsProxy is a proxy with metrics and the admin API, as serve wires them.
func viewsProxy(t *testing.T) (*testProxy, string) {
	t.Helper()
	var m *metrics.Metrics
	reg := prometheus.NewRegistry()
	tp := startProxy(t, func(p *proxy.Proxy) {
		var err error
		if m, err = metrics.New(reg, p, nil); err != nil {
			t.Fatal(err)
		}
		p.Events = events.Sinks{p.Events, m}
		p.QueryCapture = 256
	})
	srv := httptest.NewServer(admin.NewMux(admin.Options{
		Active:      tp.Active,
		Metrics:     promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Connections: tp.Connections,
	}))
	t.Cleanup(srv.Close)
	return tp, srv.URL
}

// TestViewsConnectionsAndMetrics drives real clients through the proxy and
// checks GET /connections while one is connected and GET /metrics after
// the others ended: the counters must equal the events.
func TestViewsConnectionsAndMetrics(t *testing.T) {
	t.Parallel()
	tp, url := viewsProxy(t)

	// Two clean go-sql-driver connections, one that skips close.
	for i := 0; i < 2; i++ {
		pool, err := sql.Open("mysql", "root@tcp("+tp.Addr+")/mysql?connectionAttributes=program_name:views-clean")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec("SELECT 1"); err != nil {
			t.Fatal(err)
		}
		pool.Close()
	}
	leaky, err := client.Connect(tp.Addr, "root", "", "mysql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaky.Execute("SELECT 2"); err != nil {
		t.Fatal(err)
	}
	leaky.Conn.Conn.Close() // FIN without COM_QUIT

	// One live, idle connection for /connections.
	live, err := client.Connect(tp.Addr, "root", "", "mysql")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	sent := time.Now()
	if _, err := live.Execute("SELECT 'live'"); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	// The three ended connections have left the live set once only the
	// live one is relayed: their events are in, and no other can come.
	tp.OnlyWithLive(t, 3, 1)

	asked := time.Now()
	var conns []proxy.ConnInfo
	getJSON(t, url+"/connections", &conns)
	got := time.Now()
	if len(conns) != 1 {
		t.Fatalf("/connections: %d connections, want 1: %+v", len(conns), conns)
	}
	c := conns[0]
	if c.ServerConnID != live.GetConnectionID() || c.User != "root" || c.DB != "mysql" || c.Phase != "idle" ||
		c.LastCommand != "COM_QUERY" || c.Query != "SELECT 'live'" || c.AgeMS < c.IdleMS ||
		c.BytesFromClient == 0 || c.BytesFromServer == 0 {
		t.Errorf("/connections entry: %+v", c)
	}
	// The live connection's last byte passed the proxy after the query
	// was sent and before the client had its answer, and none since: its
	// idle time at the GET is bounded by the test's own clock, however
	// slow the machine.
	if lo, hi := ms(asked.Sub(answered)), ms(got.Sub(sent)); c.IdleMS < lo || c.IdleMS > hi {
		t.Errorf("/connections idle_ms %.3f, want between %.3f (since the answer) and %.3f (since the query)", c.IdleMS, lo, hi)
	}

	body := getText(t, url+"/metrics")
	evs := tp.Events.All()
	byVerdict := map[events.Verdict]int{}
	var fromClient, fromServer uint64
	for _, e := range evs {
		byVerdict[e.Verdict]++
		fromClient += e.BytesFromClient
		fromServer += e.BytesFromServer
	}
	if byVerdict[events.Clean] != 2 || byVerdict[events.ClientNoQuit] != 1 {
		t.Fatalf("events by verdict: %v", byVerdict)
	}
	for v, n := range byVerdict {
		if got := metricValue(t, body, fmt.Sprintf(`abortscope_connections_ended_total{verdict=%q}`, v)); got != float64(n) {
			t.Errorf("ended_total{verdict=%q} = %v, events say %d", v, got, n)
		}
	}
	// The client that skipped close, by user and program.
	for _, e := range evs {
		if e.Verdict != events.ClientNoQuit {
			continue
		}
		program := e.Attrs["program_name"]
		if program == "" {
			program = e.Attrs["_client_name"]
		}
		series := fmt.Sprintf(`abortscope_client_aborts_total{program=%q,user=%q,verdict="client_no_quit"}`, program, e.User)
		if got := metricValue(t, body, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
	}
	if strings.Contains(body, `abortscope_client_aborts_total{program="views-clean"`) {
		t.Errorf("clean connections counted as client aborts:\n%s", body)
	}
	if got := metricValue(t, body, `abortscope_connection_duration_seconds_count`); got != float64(len(evs)) {
		t.Errorf("duration histogram count %v, want %d", got, len(evs))
	}
	if got := metricValue(t, body, `abortscope_connections_active{phase="idle"}`); got != 1 {
		t.Errorf("active{idle} = %v, want 1", got)
	}
	// Bytes: the ended connections' plus the live one's.
	if got := metricValue(t, body, `abortscope_bytes_total{direction="client_to_server"}`); got != float64(fromClient+c.BytesFromClient) {
		t.Errorf("bytes_total client_to_server = %v, want %d", got, fromClient+c.BytesFromClient)
	}
	if got := metricValue(t, body, `abortscope_bytes_total{direction="server_to_client"}`); got != float64(fromServer+c.BytesFromServer) {
		t.Errorf("bytes_total server_to_client = %v, want %d", got, fromServer+c.BytesFromServer)
	}
	if !strings.Contains(body, "go_goroutines ") {
		t.Error("/metrics has no Go runtime metrics")
	}
}

// ms is d in milliseconds, cut to the microsecond as the proxy's idle_ms is.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func getText(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func getJSON(t testing.TB, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getText(t, url)), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// metricValue finds the sample named exactly series (name plus labels as
// Prometheus prints them) in a text exposition.
func metricValue(t testing.TB, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no sample %s in /metrics", series)
	return 0
}
