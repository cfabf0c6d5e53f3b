package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
)

// sample is three clients: billing aborts twice, the CLI once, cron never.
func sample() []Summary {
	var a Aggregator
	a.Add(ev("app", "10.0.0.5:40001", "billing-report", 0, 11, events.Clean))
	a.Add(ev("app", "10.0.0.5:40002", "billing-report", 5, 12, events.ClientNoQuit))
	a.Add(ev("app", "10.0.0.5:40003", "billing-report", 9, 13, events.ClientAbortInFlight, withCmd(4242, "/opt/billing/bin/billing --month")))
	a.Add(ev("root", "127.0.0.1:5000", "mysql", 3, 20, events.ClientReset, func(e *events.Event) { e.LastCommand = "" }))
	a.Add(ev("root", "127.0.0.1:5001", "mysql", 4, 21, events.ServerClosed))
	a.Add(ev("cron", "10.0.0.9:1", "", 1, 30, events.Clean))
	a.Add(ev("cron", "10.0.0.9:2", "", 2, 31, events.Clean))
	a.Add(ev("", "10.0.0.9:3", "", 2, 32, events.HandshakeAbort))
	return a.Summaries()
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sample()); err != nil {
		t.Fatal(err)
	}
	want := `CLIENT          PROGRAM          PROCESS  CONNS  CLEAN%  NO_QUIT  RESET  IN_FLIGHT  OTHER  LAST ABORT
app@10.0.0.5    billing-report   -        2      50%     1        0      0          0      2026-11-25T15:16:35Z no_quit conn 12 after COM_QUERY
root@127.0.0.1  mysql            -        2      0%      0        1      0          1      2026-11-25T15:16:33Z reset conn 20
app@10.0.0.5    billing-report   billing  1      0%      0        0      1          0      2026-11-25T15:16:39Z in_flight conn 13 during COM_QUERY
cron@10.0.0.9   Go-MySQL-Driver  -        2      100%    0        0      0          0      -
?@10.0.0.9      Go-MySQL-Driver  -        1      0%      0        0      0          1      -
5 clients, 8 connections, 3 aborted by the client (38%)
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sample()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || !reflect.DeepEqual(rows[0], csvHeader) {
		t.Fatalf("rows %q; want the header and 5 clients", rows)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	third := rows[3]
	for name, want := range map[string]string{
		"user": "app", "host": "10.0.0.5", "program": "billing-report", "process": "billing",
		"conns": "1", "client_abort_in_flight": "1", "aborts": "1", "clean_share": "0.0000",
		"last_abort_verdict": "client_abort_in_flight", "last_abort_server_conn_id": "13",
		"last_abort_ts": "2026-11-25T15:16:39Z", "pids": "4242", "example_server_conn_ids": "13",
		"client_name": "Go-MySQL-Driver",
	} {
		if got := third[col[name]]; got != want {
			t.Errorf("row 3 %s = %q, want %q", name, got, want)
		}
	}
	for i, row := range rows[1:] {
		// Every connection is counted under exactly one cause.
		n := 0
		for _, pair := range strings.Fields(row[col["causes"]]) {
			code, count, ok := strings.Cut(pair, "=")
			v, err := strconv.Atoi(count)
			if !ok || code == "" || err != nil {
				t.Fatalf("row %d causes %q", i+1, row[col["causes"]])
			}
			n += v
		}
		if strconv.Itoa(n) != row[col["conns"]] {
			t.Errorf("row %d: causes %q add up to %d, conns %s", i+1, row[col["causes"]], n, row[col["conns"]])
		}
	}
	if got := rows[4][col["last_abort_ts"]]; got != "" {
		t.Errorf("a client without aborts has last_abort_ts %q", got)
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	in := sample()
	var b bytes.Buffer
	if err := WriteJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"user": "app"`, `"program": "billing-report"`, `"example_server_conn_ids": [`, `"last_abort": {`, `"clean_share": 0.5`} {
		if !strings.Contains(b.String(), field) {
			t.Errorf("JSON lacks %s:\n%s", field, b.String())
		}
	}
	var out []Summary
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	b.Reset()
	if err := WriteJSON(&b, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("no clients: %q, %v; want []", b.String(), err)
	}
}
