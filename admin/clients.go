package admin

import (
	"net/http"

	"github.com/abortscope/abortscope/report"
)

// registerClients serves GET /clients: one summary per client identity
// (user, host, program, process) of the connections ended since serve
// started, the clients with the most aborts first, as `abortscope report
// --admin` prints them.
func (o Options) registerClients(mux *http.ServeMux) {
	if o.Clients == nil {
		return
	}
	mux.HandleFunc("GET /clients", func(w http.ResponseWriter, r *http.Request) {
		sums := o.Clients()
		if sums == nil {
			sums = []report.Summary{} // [] rather than null
		}
		writeJSON(w, http.StatusOK, sums)
	})
}
