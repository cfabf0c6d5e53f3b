package session

import (
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// Event judges the connection and returns its event as of now: the
// verdict from the earliest recorded cause of the ending and the tracker's
// final view, the identity, the counters and the faults. The engine adds
// what it alone knows (the client's process) and emits it.
func (s *Session) Event(now time.Time) *events.Event {
	e := s.ending()
	snap := s.tr.Snapshot()
	basis, evidence := "protocol", ""
	if s.tls.passthrough {
		basis = "tls_records"
		e, snap, evidence = s.passthroughJudge(e, snap)
	}
	j := judge(e, snap)
	if s.tls.passthrough && j.verdict == events.HandshakeAbort && j.by == events.ByClient {
		j.expected = s.tlsHandshakeAbortError()
	}
	if s.limited {
		j.verdict = events.ProxyLimit
	}
	if s.fault != nil {
		j = judgeFault(j, s.fault, s.faultPhase)
	}
	ev := &events.Event{
		Event:               "connection_ended",
		TS:                  now.UTC(),
		ConnID:              s.cfg.ConnID,
		ServerConnID:        snap.ServerConnID,
		ClientAddr:          s.cfg.ClientAddr,
		IdleMS:              ms(e.idle),
		Upstream:            s.cfg.Upstream,
		User:                snap.User,
		DB:                  snap.DB,
		Attrs:               attrMap(snap.Attrs),
		StartedAt:           s.cfg.Started.UTC(),
		DurationMS:          ms(now.Sub(s.cfg.Started)),
		Phase:               e.phase.String(),
		EndedBy:             j.by,
		Close:               j.close,
		Verdict:             j.verdict,
		ExpectedServerError: j.expected,
		LastCommand:         snap.LastCommand,
		Query:               s.Query(snap.LastQuery),
		Commands:            snap.Commands,
		BytesFromClient:     snap.BytesFromClient,
		BytesFromServer:     snap.BytesFromServer,
		ServerVersion:       snap.ServerVersion,
		TLSRequested:        snap.SSLRequest,
		Desyncs:             snap.Desyncs,
		FaultsFired:         s.FaultsFired(),
	}
	if len(ev.FaultsFired) == 0 {
		ev.FaultsFired = nil
	}
	ev.ClientTLS, ev.UpstreamTLS = s.Legs()
	ev.VerdictBasis, ev.Evidence = basis, evidence
	ev.TLSError = s.tlsError(e, snap)
	if e.phase == protocol.PhaseResult {
		ev.ResultBytes = snap.ResultBytes
	}
	if e.err != nil {
		ev.Error = e.err.Error()
	}
	if snap.LastErr != nil && (j.verdict == events.ServerError || j.verdict == events.AuthFailed) {
		ev.ServerErrorCode = int(snap.LastErr.Code)
		ev.ServerErrorMessage = snap.LastErr.Message
	}
	if s.fault != nil && j.verdict == events.FaultInjected {
		ev.Fault, ev.FaultID, ev.Action = s.fault.Name, s.fault.ID, string(s.fault.Action)
	}
	return ev
}

// attrMap returns the connection attributes as the event's map.
func attrMap(attrs []protocol.Attr) map[string]string {
	m := make(map[string]string, len(attrs))
	for _, a := range attrs {
		m[a.Key] = a.Value
	}
	return m
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
