package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/report"
)

func TestClients(t *testing.T) {
	var agg report.Aggregator
	mux := NewMux(Options{Clients: agg.Summaries})
	code, body, hdr := get(t, mux, http.MethodGet, "/clients")
	if code != http.StatusOK || strings.TrimSpace(body) != "[]" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /clients with no connection: %d %q %q; want 200 []", code, body, hdr.Get("Content-Type"))
	}
	ts := time.Date(2026, 11, 25, 15, 16, 30, 0, time.UTC)
	for i, v := range []events.Verdict{events.Clean, events.ClientNoQuit, events.Clean} {
		agg.Emit(&events.Event{Event: "connection_ended", TS: ts, User: "app", ClientAddr: "10.0.0.5:4000" + string(rune('0'+i)),
			ServerConnID: uint32(i + 1), Verdict: v, Attrs: map[string]string{"program_name": "billing-report"}})
	}
	agg.Emit(&events.Event{Event: "connection_ended", TS: ts, User: "cron", ClientAddr: "10.0.0.9:1", Verdict: events.Clean})
	code, body, _ = get(t, mux, http.MethodGet, "/clients")
	var sums []report.Summary
	if err := json.Unmarshal([]byte(body), &sums); err != nil || code != http.StatusOK {
		t.Fatalf("GET /clients: %d %v\n%s", code, err, body)
	}
	if len(sums) != 2 || sums[0].Program != "billing-report" || sums[0].Host != "10.0.0.5" || sums[0].Conns != 3 ||
		sums[0].Aborts != 1 || sums[0].Verdicts[events.ClientNoQuit] != 1 || sums[1].User != "cron" {
		t.Errorf("GET /clients: %+v; want billing-report (3 connections, 1 abort) first, then cron", sums)
	}
	if code, _, _ := get(t, NewMux(Options{}), http.MethodGet, "/clients"); code != http.StatusNotFound {
		t.Errorf("GET /clients without Clients: %d, want 404", code)
	}
}
