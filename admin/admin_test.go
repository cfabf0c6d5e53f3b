package admin

import (
	"github.com/abortscope/abortscope/proxy"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, string(body), rec.Result().Header
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		code   int
		body   string
		method string
	}{
		{"zero options", Options{}, http.StatusOK, "ok\n", http.MethodGet},
		{"HEAD", Options{}, http.StatusOK, "", http.MethodHead},
		{"with active count", Options{Active: func() int { return 3 }}, http.StatusOK, "ok\nactive_connections 3\n", http.MethodGet},
		{"POST is refused", Options{}, http.StatusMethodNotAllowed, "", http.MethodPost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := get(t, NewMux(tt.opts), tt.method, "/healthz")
			if code != tt.code {
				t.Errorf("status %d, want %d", code, tt.code)
			}
			if tt.body != "" && body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if tt.code != http.StatusMethodNotAllowed && !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
				t.Errorf("Content-Type %q", hdr.Get("Content-Type"))
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	if code, _, _ := get(t, NewMux(Options{}), http.MethodGet, "/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: status %d, want 404", code)
	}
}

// TestHealthzOverHTTP serves the mux on a real listener, as serve does.
func TestHealthzOverHTTP(t *testing.T) {
	srv := httptest.NewServer(NewMux(Options{Active: func() int { return 7 }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\nactive_connections 7\n" {
		t.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
	}
}

func TestCheckLoopback(t *testing.T) {
	tests := []struct {
		addr   string
		ok     bool
		remote bool // refused for not being loopback (vs. malformed)
	}{
		{"127.0.0.1:9307", true, false},
		{"127.0.0.1:0", true, false},
		{"127.8.9.10:9307", true, false},
		{"[::1]:9307", true, false},
		{"localhost:9307", true, false},
		{"0.0.0.0:9307", false, true},
		{"[::]:9307", false, true},
		{":9307", false, true}, // every interface
		{"10.1.2.3:9307", false, true},
		{"192.168.1.10:9307", false, true},
		{"[2001:db8::1]:9307", false, true},
		{"admin.example.com:9307", false, true},
		{"localhost.example.com:9307", false, true},
		{"127.0.0.1", false, false}, // no port
		{"", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := CheckLoopback(tt.addr)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckLoopback(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
			}
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error %q does not name the address", err)
			}
			if tt.remote && !strings.Contains(err.Error(), "--admin-allow-remote") {
				t.Errorf("error %q does not say how to allow a remote address", err)
			}
		})
	}
}

func TestHandlerRefusesForeignHost(t *testing.T) {
	h := Handler(Options{}, false)
	for host, want := range map[string]int{
		"127.0.0.1:9307":        http.StatusOK,
		"localhost:9307":        http.StatusOK,
		"[::1]:9307":            http.StatusOK,
		"attacker.example:9307": http.StatusForbidden,
		"10.0.0.5:9307":         http.StatusForbidden,
	} {
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: %d, want %d", host, w.Code, want)
		}
	}
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.Host = "attacker.example"
	w := httptest.NewRecorder()
	Handler(Options{}, true).ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("with allowRemote: %d", w.Code)
	}
}

// TestHandlerToken: with a token, every endpoint but /healthz wants it as
// a bearer token; a wrong one or none gets 401.
func TestHandlerToken(t *testing.T) {
	h := Handler(Options{Token: "s3cret", Connections: func() []proxy.ConnInfo { return nil }}, true)
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/healthz", "", http.StatusOK},
		{"/connections", "", http.StatusUnauthorized},
		{"/connections", "Bearer wrong", http.StatusUnauthorized},
		{"/connections", "Bearer s3cret-and-more", http.StatusUnauthorized},
		{"/connections", "s3cret", http.StatusUnauthorized},
		{"/connections", "Bearer s3cret", http.StatusOK},
		{"/faults", "", http.StatusUnauthorized},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s with %q: %d, want %d", tc.path, tc.auth, w.Code, tc.want)
		}
		if w.Code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.path)
		}
	}
}
