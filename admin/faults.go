package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/faults"
)

// maxRuleBody bounds a POST /faults body: one rule is a few hundred bytes.
const maxRuleBody = 64 << 10

// APIError is an error the API answers with: its HTTP status and a JSON
// body {"error": "...", "field": "..."}; field names the rule field at
// fault, when there is one. The fault CLI decodes the same type.
type APIError struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Field   string `json:"field,omitempty"`
}

func (e *APIError) Error() string {
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		return fmt.Sprintf("field %q: %s (HTTP %d)", e.Field, e.Message, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

var errFaultsOff = &APIError{
	Status: http.StatusForbidden,
	Message: "fault injection is off: start abortscope serve with --allow-faults " +
		"(or arm rules at start with --fault or --faults-file, which imply it)",
}

var errCrossOrigin = &APIError{
	Status:  http.StatusForbidden,
	Message: "cross-origin request refused: a web page may not arm or remove fault rules",
}

// faultsAPI serves /faults. It is built only by NewMux.
type faultsAPI struct {
	set     *faults.Set // nil when fault injection is off
	log     *zap.Logger
	maxBody int64
	// csrf refuses POST and DELETE from a browser on behalf of another
	// origin: a loopback address does not keep out a page the operator
	// has open, which can send a no-cors POST (any Content-Type) to
	// 127.0.0.1. curl and the fault CLI send neither Origin nor
	// Sec-Fetch-Site and pass.
	csrf *http.CrossOriginProtection
}

func (o Options) faultsAPI() *faultsAPI {
	a := &faultsAPI{log: o.Logger, maxBody: maxRuleBody, csrf: http.NewCrossOriginProtection()}
	if o.AllowFaults {
		a.set = o.Faults
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	return a
}

func (a *faultsAPI) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /faults", a.handle(a.list))
	mux.HandleFunc("POST /faults", a.handle(a.add))
	mux.HandleFunc("DELETE /faults", a.handle(a.clear))
	mux.HandleFunc("DELETE /faults/{id}", a.handle(a.remove))
}

// handle adapts an endpoint that returns an error: every endpoint answers
// 403 while fault injection is off, and an *APIError becomes its status
// and JSON body.
func (a *faultsAPI) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := errFaultsOff
		switch {
		case a.set == nil:
		case a.csrf.Check(r) != nil:
			err = errCrossOrigin
		default:
			err = asAPIError(fn(w, r))
		}
		if err != nil {
			writeJSON(w, err.Status, err)
		}
	}
}

func asAPIError(err error) *APIError {
	if err == nil {
		return nil
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	return &APIError{Status: http.StatusInternalServerError, Message: err.Error()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // a failed write means the client went away; nothing to tell it
}

// list answers the armed rules, oldest first, with their fired counts.
func (a *faultsAPI) list(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, a.set.List())
	return nil
}

// add arms one rule and answers it as armed, with its id.
func (a *faultsAPI) add(w http.ResponseWriter, r *http.Request) error {
	rule, err := faults.DecodeRule(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err == nil {
		rule, err = a.set.Add(rule)
	}
	var tooBig *http.MaxBytesError
	var fe *faults.FieldError
	switch {
	case errors.As(err, &tooBig):
		return &APIError{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("request body over %d bytes; send one rule per request", tooBig.Limit)}
	case errors.As(err, &fe):
		return &APIError{Status: http.StatusBadRequest, Message: fe.Error(), Field: fe.Field}
	case err != nil:
		return &APIError{Status: http.StatusBadRequest, Message: err.Error()}
	}
	a.log.Info("fault armed", zap.String("id", rule.ID), zap.String("name", rule.Name),
		zap.String("action", string(rule.Action)), zap.String("remote", r.RemoteAddr))
	w.Header().Set("Location", "/faults/"+rule.ID)
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

// remove disarms one rule.
func (a *faultsAPI) remove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !a.set.Remove(id) {
		return &APIError{Status: http.StatusNotFound,
			Message: fmt.Sprintf("no armed fault rule with id %q (GET /faults lists them; a rule past its ttl is gone)", id)}
	}
	a.log.Info("fault removed", zap.String("id", id), zap.String("remote", r.RemoteAddr))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// clear disarms every rule.
func (a *faultsAPI) clear(w http.ResponseWriter, r *http.Request) error {
	n := a.set.Clear()
	a.log.Info("faults cleared", zap.Int("removed", n), zap.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, map[string]int{"removed": n})
	return nil
}
