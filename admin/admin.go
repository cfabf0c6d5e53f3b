// Package admin serves abortscope's HTTP API: /healthz, /faults to arm
// and disarm fault rules at run time, and the live views /connections,
// /clients and /metrics.
package admin

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/report"
)

// Options configures the admin handler. The zero value serves /healthz only.
type Options struct {
	// Active returns the number of connections being relayed, shown on
	// /healthz. If nil, it is left out.
	Active func() int
	// Faults is the set /faults arms rules in and lists. It is used only
	// with AllowFaults.
	Faults *faults.Set
	// AllowFaults enables the /faults endpoints. If false (or Faults is
	// nil), every /faults endpoint answers 403 telling the operator to start
	// serve with --allow-faults, and no rule can be armed through the API.
	AllowFaults bool
	// Logger records each rule armed or removed through the API. If nil,
	// nothing is logged.
	Logger *zap.Logger
	// Metrics serves GET /metrics (Prometheus text). If nil, not served.
	Metrics http.Handler
	// Connections lists the live connections for GET /connections. If nil,
	// not served.
	Connections func() []proxy.ConnInfo
	// Clients returns the per-client summaries for GET /clients (a
	// report.Aggregator's Summaries). If nil, not served.
	Clients func() []report.Summary
	// Token, if set, must come as "Authorization: Bearer <Token>" with
	// every request but GET /healthz (Handler); others get 401.
	Token string
}

// NewMux returns the admin API's routes.
func NewMux(o Options) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if o.Active != nil {
			fmt.Fprintf(w, "ok\nactive_connections %d\n", o.Active())
			return
		}
		fmt.Fprintln(w, "ok")
	})
	o.faultsAPI().register(mux)
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.Connections != nil {
		mux.HandleFunc("GET /connections", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, o.Connections())
		})
	}
	o.registerClients(mux)
	return mux
}

// Handler is NewMux behind a check of the Host header: unless
// allowRemote, a request must name a loopback address or localhost. The
// listener is on loopback already; this stops DNS rebinding, where a web
// page the operator has open gets its own host name resolved to 127.0.0.1
// and reads /connections and /clients as "same origin".
func Handler(o Options, allowRemote bool) http.Handler {
	mux := NewMux(o)
	want := []byte("Bearer " + o.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowRemote && !loopbackHost(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]string{
				"error": "the admin API answers only requests addressed to a loopback host (127.0.0.1, [::1], localhost); start serve with --admin-allow-remote to change that",
			})
			return
		}
		if o.Token != "" && r.URL.Path != "/healthz" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="abortscope"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"error": "the admin API wants its token: Authorization: Bearer <token> (abortscope fault and report take --admin-token-file)",
			})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckLoopback returns an error unless addr's host is a loopback address
// (or "localhost"): the admin API can arm faults and shows client identity,
// so it stays off the network unless the operator says otherwise.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("admin address %q is not a loopback address; pass --admin-allow-remote to expose the admin API", addr)
	}
	return nil
}
