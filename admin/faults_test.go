package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/faults"
)

// do sends one request to h and returns the status and body.
func do(t *testing.T, h http.Handler, method, path, body string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Body.String(), rec.Result().Header
}

func decodeJSON[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	return v
}

func faultsMux(set *faults.Set) http.Handler {
	return NewMux(Options{Faults: set, AllowFaults: true})
}

// TestFaultsForbidden: without AllowFaults every /faults endpoint answers
// 403 saying how to turn fault injection on, and nothing gets armed.
func TestFaultsForbidden(t *testing.T) {
	set := faults.NewSet(1, nil)
	for name, opts := range map[string]Options{
		"not allowed":      {Faults: set},
		"allowed, no set":  {AllowFaults: true},
		"zero options":     {},
		"not allowed, set": {Faults: set, AllowFaults: false},
	} {
		h := NewMux(opts)
		for _, req := range [][3]string{
			{http.MethodGet, "/faults", ""},
			{http.MethodPost, "/faults", `{"action":"reset_server"}`},
			{http.MethodDelete, "/faults", ""},
			{http.MethodDelete, "/faults/f1", ""},
		} {
			code, body, hdr := do(t, h, req[0], req[1], req[2])
			if code != http.StatusForbidden {
				t.Errorf("%s: %s %s: status %d, want 403", name, req[0], req[1], code)
			}
			e := decodeJSON[APIError](t, body)
			if !strings.Contains(e.Message, "--allow-faults") || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %s %s: body %q (%s) does not say to pass --allow-faults", name, req[0], req[1], body, hdr.Get("Content-Type"))
			}
		}
	}
	if n := len(set.List()); n != 0 {
		t.Errorf("%d rules armed through a forbidden API", n)
	}
}

// TestFaultsLifecycle: POST arms (201 with id), GET lists with fired
// counts, DELETE one (204, then 404), DELETE all ({"removed": N}).
func TestFaultsLifecycle(t *testing.T) {
	set := faults.NewSet(1, nil)
	h := faultsMux(set)

	code, body, _ := do(t, h, http.MethodGet, "/faults", "")
	if code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /faults with none armed: %d %q, want 200 []", code, body)
	}

	code, body, hdr := do(t, h, http.MethodPost, "/faults",
		`{"name":"big-report","action":"reset_server","phase":"result","after_bytes":65536,"count":1,"user":"billing","attrs":{"program_name":"worker"},"ttl":"5m"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /faults: %d %s", code, body)
	}
	r1 := decodeJSON[faults.Rule](t, body)
	if r1.ID == "" || r1.Name != "big-report" || r1.Action != faults.ResetServer || r1.AfterBytes != 65536 ||
		r1.Attrs["program_name"] != "worker" || time.Duration(r1.TTL) != 5*time.Minute || r1.ExpiresAt == nil {
		t.Errorf("armed rule: %s", body)
	}
	if hdr.Get("Location") != "/faults/"+r1.ID {
		t.Errorf("Location %q", hdr.Get("Location"))
	}
	// The status fields of a posted rule are the server's to fill in.
	code, body, _ = do(t, h, http.MethodPost, "/faults",
		`{"id":"mine","fired":7,"armed_at":"2001-01-01T00:00:00Z","expires_at":"2001-01-01T00:00:00Z","action":"error","code":1213}`)
	if code != http.StatusCreated {
		t.Fatalf("POST /faults: %d %s", code, body)
	}
	r2 := decodeJSON[faults.Rule](t, body)
	if r2.ID == "mine" || r2.ID == r1.ID || r2.Fired != 0 || r2.ArmedAt.Year() == 2001 || r2.ExpiresAt != nil || r2.State != "40001" {
		t.Errorf("second rule: %s", body)
	}

	// Fire the first rule once; GET shows it.
	v := &faults.View{User: "billing", Attrs: map[string]string{"program_name": "worker"}, Phase: "result", ResultBytes: 70000}
	if f := set.Check(&faults.Chunk{Len: 1, QuitAt: -1}, v); f == nil || f.ID != r1.ID {
		t.Fatalf("Check: %+v", f)
	}
	code, body, _ = do(t, h, http.MethodGet, "/faults", "")
	list := decodeJSON[[]faults.Rule](t, body)
	if code != http.StatusOK || len(list) != 2 || list[0].ID != r1.ID || list[0].Fired != 1 || list[1].Fired != 0 {
		t.Errorf("GET /faults: %d %s", code, body)
	}
	if !strings.Contains(body, `"fired": 1`) {
		t.Errorf("GET /faults body has no fired count: %s", body)
	}

	code, body, _ = do(t, h, http.MethodDelete, "/faults/"+r1.ID, "")
	if code != http.StatusNoContent || body != "" {
		t.Errorf("DELETE /faults/%s: %d %q", r1.ID, code, body)
	}
	code, body, _ = do(t, h, http.MethodDelete, "/faults/"+r1.ID, "")
	if e := decodeJSON[APIError](t, body); code != http.StatusNotFound || !strings.Contains(e.Message, r1.ID) {
		t.Errorf("second DELETE /faults/%s: %d %q", r1.ID, code, body)
	}
	if list := set.List(); len(list) != 1 || list[0].ID != r2.ID {
		t.Errorf("after DELETE: %+v", list)
	}

	do(t, h, http.MethodPost, "/faults", `{"action":"blackhole"}`)
	code, body, _ = do(t, h, http.MethodDelete, "/faults", "")
	if got := decodeJSON[map[string]int](t, body); code != http.StatusOK || len(got) != 1 || got["removed"] != 2 {
		t.Errorf("DELETE /faults: %d %q, want 200 {\"removed\": 2}", code, body)
	}
	if set.Armed() {
		t.Error("rules still armed after DELETE /faults")
	}
}

// TestFaultsBadRule: a bad rule gets 400 with a JSON body naming the field,
// whether the rule is invalid, the JSON names an unknown field or has the
// wrong type; nothing is armed.
func TestFaultsBadRule(t *testing.T) {
	tests := []struct {
		name, body, field, says string
	}{
		{"bad action", `{"action":"explode"}`, "action", "reset_server"},
		{"no action", `{"phase":"result"}`, "action", "unknown action"},
		{"bad regexp", `{"action":"error","code":1213,"query":"(SELECT"}`, "query", "regexp"},
		{"unknown field", `{"action":"reset_server","afterbytes":10}`, "afterbytes", "after_bytes"},
		{"wrong type", `{"action":"reset_server","count":"one"}`, "count", "integer"},
		{"float for an integer", `{"action":"reset_server","after_rows":1.5}`, "after_rows", "integer"},
		{"code out of range", `{"action":"error","code":99999}`, "code", "uint16"},
		{"attrs not strings", `{"action":"reset_server","attrs":{"pid":1}}`, "attrs", "string"},
		{"negative count", `{"action":"reset_server","count":-1}`, "count", "-1"},
		{"negative duration", `{"action":"stall_server","duration_ms":-5}`, "duration_ms", "negative"},
		{"probability over 1", `{"action":"reset_server","probability":1.5}`, "probability", "between 0 and 1"},
		{"bad ttl", `{"action":"reset_server","ttl":"soon"}`, "ttl", "duration"},
		{"bad phase", `{"action":"reset_server","phase":"later"}`, "phase", "handshake"},
		{"bad client", `{"action":"reset_server","client":"10.0.0.0/33"}`, "client", "CIDR"},
		{"error without code", `{"action":"error"}`, "code", "1213"},
		{"not an object", `[{"action":"reset_server"}]`, "", "object"},
		{"two rules", `{"action":"reset_server"}{"action":"close_server"}`, "", "one rule"},
		{"syntax", `{"action":`, "", "JSON"},
		{"empty", ``, "", "empty body"},
	}
	set := faults.NewSet(1, nil)
	h := faultsMux(set)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := do(t, h, http.MethodPost, "/faults", tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", code, body)
			}
			t.Log(strings.TrimSpace(body))
			e := decodeJSON[APIError](t, body)
			if e.Field != tt.field {
				t.Errorf("field %q, want %q; body %s", e.Field, tt.field, body)
			}
			if !strings.Contains(e.Message, tt.says) || tt.field != "" && !strings.Contains(e.Message, tt.field) {
				t.Errorf("error %q should mention %q and the field %q", e.Message, tt.says, tt.field)
			}
		})
	}
	if n := len(set.List()); n != 0 {
		t.Errorf("%d bad rules armed", n)
	}
}

// TestFaultsBodyLimit: a body over 64 KiB is refused with 413.
func TestFaultsBodyLimit(t *testing.T) {
	set := faults.NewSet(1, nil)
	big := `{"action":"error","code":1213,"message":"` + strings.Repeat("x", maxRuleBody) + `"}`
	code, body, _ := do(t, faultsMux(set), http.MethodPost, "/faults", big)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(decodeJSON[APIError](t, body).Message, "65536") {
		t.Errorf("status %d body %q, want 413 naming the limit", code, body)
	}
	if set.Armed() {
		t.Error("an oversized rule was armed")
	}
}

// TestFaultsOverHTTP drives the API over a real listener, as the CLI does.
func TestFaultsOverHTTP(t *testing.T) {
	set := faults.NewSet(1, nil)
	srv := httptest.NewServer(faultsMux(set))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/faults", "application/json", strings.NewReader(`{"action":"drop_quit"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !set.Armed() {
		t.Errorf("POST over HTTP: %d, armed %v", resp.StatusCode, set.Armed())
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/faults", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT /faults: %d, want 405", resp.StatusCode)
	}
}

// TestFaultsCrossOrigin: a browser page of another origin cannot arm or
// remove rules on the loopback admin API; curl-like requests still can.
func TestFaultsCrossOrigin(t *testing.T) {
	set := faults.NewSet(1, nil)
	if _, err := set.Add(faults.Rule{Action: faults.DropQuit}); err != nil {
		t.Fatal(err)
	}
	h := faultsMux(set)
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "http://evil.example"},
	} {
		for _, req := range [][3]string{
			{http.MethodPost, "/faults", `{"action":"reset_server"}`},
			{http.MethodDelete, "/faults", ""},
			{http.MethodDelete, "/faults/f1", ""},
		} {
			r := httptest.NewRequest(req[0], "http://127.0.0.1:9307"+req[1], strings.NewReader(req[2]))
			r.Header.Set("Content-Type", "text/plain") // a no-cors form post
			for k, v := range hdr {
				r.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != http.StatusForbidden {
				t.Errorf("%v %s %s: status %d, want 403", hdr, req[0], req[1], rec.Code)
			}
		}
	}
	if n := len(set.List()); n != 1 {
		t.Fatalf("after cross-origin requests %d rules armed, want the 1 armed before", n)
	}
	if code, body, _ := do(t, h, http.MethodPost, "/faults", `{"action":"reset_server"}`); code != http.StatusCreated {
		t.Fatalf("POST without browser headers: %d %s, want 201", code, body)
	}
}
