package session

import (
	"fmt"
	"strings"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// A connection whose TLS passes through cannot be read, only measured: the
// session follows its TLS records (protocol.TLSRecords) and judges it from
// their sizes and order, as the verdict takes a tracker's view:
//
//   - authenticated: the client sent application data and the server
//     answered it (its OK to the login, inside TLS);
//   - COM_QUIT sent: the client's last application record holds 5 bytes of
//     plaintext (a COM_QUIT packet), possibly followed by its close_notify,
//     known exactly from the version and cipher suite of the ServerHello;
//   - phase when a side left: "result" if the server was still sending (a
//     write to the departed client failed; server bytes were on their way,
//     read and not yet written on or waiting in the proxy's socket; a
//     server record was only partly through; server records came after
//     its departure, a close_notify aside; or its last record was a full
//     one, 16 KiB of plaintext: MariaDB flushes its net buffer as full
//     records while a result streams, and only the end of a reply leaves a
//     shorter one), "command" if the client's last record was not
//     answered, "idle" if it was.
//
// What it cannot tell: which command ran, the user, the schema, the
// attributes; a COM_QUIT from any other 5-byte packet (COM_PING,
// COM_STATISTICS, COM_DEBUG: all answered, so the answer tells them apart
// unless the client leaves before it); a reply whose end fell exactly on a
// 16 KiB boundary from one still streaming; and CBC cipher suites (padded
// records): with those, neither COM_QUIT nor a full record is recognised.

// tlsView is the record layer as it stood at a moment.
type tlsView struct {
	set            bool
	client, server protocol.TLSSide
}

func (s *Session) tlsNow() tlsView {
	return tlsView{set: true, client: s.tls.records.Side(protocol.ClientToServer), server: s.tls.records.Side(protocol.ServerToClient)}
}

// plaintext returns the plaintext length of an application record of n
// bytes, and whether it is known.
func (s *Session) plaintext(n int) (int, bool) {
	o, ok := s.tls.records.Overhead()
	if !ok || n < o {
		return 0, false
	}
	return n - o, true
}

// closeNotifyLen is the plaintext length of a TLS 1.3 close_notify record
// (an encrypted alert: level and description).
const closeNotifyLen = 2

// quitSent reports whether the client's last application record was a
// COM_QUIT (5 bytes of plaintext), possibly followed by its close_notify.
func (s *Session) quitSent(c protocol.TLSSide) bool {
	last, ok := s.plaintext(c.LastApp)
	if !ok || c.App == 0 {
		return false
	}
	if last == closeNotifyLen && s.tls.records.Version == protocol.TLS13 {
		prev, _ := s.plaintext(c.PrevApp)
		return c.App >= 2 && prev == 5
	}
	return last == 5
}

// closeNotifyLast reports whether c's last record was a close_notify:
// in TLS 1.3 an application record of 2 bytes of plaintext, before it a
// visible alert after its last application record.
func (s *Session) closeNotifyLast(c protocol.TLSSide) bool {
	if s.tls.records.Version == protocol.TLS13 {
		p, ok := s.plaintext(c.LastApp)
		return ok && c.App > 0 && p == closeNotifyLen
	}
	return c.Alerts > 0 && c.LastSeq > c.AppSeq
}

// passthroughPhase is the phase of a passed-through connection when side
// by left (at: the record layer then), given whether the server was still
// sending to the departed client.
func (s *Session) passthroughPhase(at tlsView, streaming bool) (protocol.Phase, bool) {
	c, srv := at.client, at.server
	authenticated := c.App > 0 && srv.AppSeq > c.FirstAppSeq
	switch {
	case !authenticated:
		return protocol.PhaseHandshake, false
	case streaming:
		return protocol.PhaseResult, true
	case s.closeNotifyLast(c) && s.tls.records.Version == protocol.TLS13 && c.App >= 2:
		// The client closed its TLS session: its command, if any, is the
		// record before the close_notify.
		if c.PrevAppSeq > srv.AppSeq && !s.quitSent(c) {
			return protocol.PhaseCommand, true
		}
	case c.AppSeq > srv.AppSeq && !s.quitSent(c):
		return protocol.PhaseCommand, true
	}
	return protocol.PhaseIdle, true
}

// tlsMaxPlaintext is the most plaintext a TLS record carries.
const tlsMaxPlaintext = 1 << 14

// fullRecordLast reports whether the server's last application record
// before at was full, after the client's last: MariaDB writes a result
// through its 16 KiB net buffer, flushed as full records while the result
// streams; only the end of a reply leaves a shorter one.
func (s *Session) fullRecordLast(at tlsView) bool {
	p, ok := s.plaintext(at.server.LastApp)
	return ok && p == tlsMaxPlaintext && at.server.AppSeq > at.client.AppSeq
}

// serverRecordsAfter counts the server's application records after at,
// leaving out one close_notify (TLS 1.3 encrypts alerts as application
// data; a server closing after the client's FIN sends it).
func (s *Session) serverRecordsAfter(at tlsView) int {
	now := s.tls.records.Side(protocol.ServerToClient)
	n := now.App - at.server.App
	if n > 0 {
		if p, ok := s.plaintext(now.LastApp); ok && p == closeNotifyLen {
			n--
		}
	}
	return n
}

// passthroughJudge rewrites the ending and the tracker's snapshot of a
// passed-through connection from its records, for judge, and says what
// was seen.
func (s *Session) passthroughJudge(e ending, snap protocol.Snapshot) (ending, protocol.Snapshot, string) {
	var at tlsView
	streaming := false
	switch e.by {
	case events.ByClient:
		// The server was still sending: a write to the departed client
		// failed (whichever signal came first), a server record was cut
		// by the departure, or more came after it.
		at = s.tls.atEnd[Client]
		m := &s.peers[Client]
		// A write refused before any read said the client had gone: it
		// carried the reply. One refused after the client's FIN carried
		// what came after: the records say whether that was more than
		// the server's close_notify.
		wroteInto := m.firstOnWrite
		// Server bytes waiting when the client left count, unless the
		// client had closed its TLS session (a close_notify last): then
		// they are the server's close_notify in answer, and the records
		// read after say whether anything else came.
		busy := m.otherBusy && !s.closeNotifyLast(at.client)
		streaming = wroteInto || busy || at.server.MidRecord || s.serverRecordsAfter(at) > 0 ||
			s.fullRecordLast(at)
	case events.ByServer:
		at = s.tls.atEnd[Server]
		if !at.set {
			at = s.tlsNow()
		}
		if _, authenticated := s.passthroughPhase(at, false); !authenticated && e.close == events.CloseFIN && s.clientAlerted(at.client) {
			// The client refused the TLS handshake with an alert, and
			// MariaDB closed (FIN) in answer: whose FIN the proxy read
			// first is a race (e2e/tls TestTLSHandshakeAborts), the ending
			// is the client's, which leaves after its alert (a FIN, unless
			// its own signal says otherwise). A reset from the server is
			// no answer to an alert: it stays the server's.
			e.by, e.close, e.err, e.onWrite, e.writeFailed = events.ByClient, events.CloseFIN, nil, false, false
			if c := &s.peers[Client]; c.set {
				e.close, e.onWrite, e.err = c.outcome()
				e.writeFailed = c.write.set
			}
		}
	default:
		at = s.tlsNow()
	}
	if !at.set {
		at = s.tlsNow()
	}
	if e.by != events.ByClient {
		streaming = at.server.MidRecord || s.fullRecordLast(at)
	}
	phase, authenticated := s.passthroughPhase(at, streaming)
	e.phase = phase
	snap.Phase, snap.Authenticated = phase, authenticated
	snap.QuitSent = s.quitSent(at.client)
	if e.by == events.ByClient && !streaming {
		// The judge reads a FIN in flight by the phase the reply ended in.
		snap.Phase = phase
	}
	return e, snap, s.evidence(at, streaming)
}

// evidence says in a sentence what the records showed.
func (s *Session) evidence(at tlsView, streaming bool) string {
	r := &s.tls.records
	var b strings.Builder
	name := protocol.TLSVersionName(r.Version)
	if name == "" {
		name = "TLS (version not seen)"
	}
	fmt.Fprintf(&b, "%s suite 0x%04x; client %d application records", name, r.Suite, at.client.App)
	if at.client.App > 0 {
		if p, ok := s.plaintext(at.client.LastApp); ok {
			fmt.Fprintf(&b, ", the last %d bytes (%d of plaintext", at.client.LastApp, p)
			if s.quitSent(at.client) {
				b.WriteString(": COM_QUIT")
			}
			b.WriteString(")")
		} else {
			fmt.Fprintf(&b, ", the last %d bytes (plaintext length unknown for this suite)", at.client.LastApp)
		}
	}
	fmt.Fprintf(&b, "; server %d", at.server.App)
	switch {
	case at.client.App == 0:
	case at.server.AppSeq > at.client.AppSeq:
		b.WriteString(", its last after the client's last")
	default:
		b.WriteString(", none after the client's last")
	}
	if s.fullRecordLast(at) {
		b.WriteString("; its last record full (16 KiB of plaintext: a reply still coming)")
	}
	if streaming {
		b.WriteString("; the server was still sending when the client left")
	}
	if r.Broken {
		b.WriteString("; the record layer was lost (not TLS?)")
	}
	return b.String()
}

// feedRecords follows the records of a passed-through connection, and the
// size of the server's reply since the client last spoke.
func (s *Session) feedRecords(from Peer, b []byte) {
	d := dirOf(from)
	before := s.tls.records.Side(protocol.ClientToServer).App
	s.tls.records.Feed(d, b)
	switch {
	case from == Server:
		s.tls.replyBytes += uint64(len(b))
	case s.tls.records.Side(protocol.ClientToServer).App != before:
		s.tls.replyBytes = 0
	}
}

// tlsHandshaking reports whether a passed-through connection is still in
// its TLS handshake or login: the client never had an answer to
// application data.
func (s *Session) tlsHandshaking() bool {
	if !s.tls.passthrough {
		return false
	}
	_, authenticated := s.passthroughPhase(s.tlsNow(), false)
	return !authenticated
}

// tlsHandshakeAbortError is what MariaDB logs for a client that left a
// passed-through connection before logging in (measured,
// e2e/tls TestTLSHandshakeAborts): nothing when the client said why with
// a TLS alert (it rejected the certificate); otherwise its TLS handshake
// fails on the missing data and the ERR it then writes meets the closed
// socket: 1160.
func (s *Session) tlsHandshakeAbortError() int {
	at := s.tls.atEnd[Client]
	if !at.set {
		at = s.tlsNow()
	}
	if s.clientAlerted(at.client) {
		return 0
	}
	return events.ErNetErrorOnWrite
}

// clientAlerted reports whether the client ended its TLS handshake with an
// alert (it refused the server's certificate).
func (s *Session) clientAlerted(c protocol.TLSSide) bool {
	if c.Alerts > 0 {
		return true
	}
	// TLS 1.3 encrypts the alert, sent where its Finished belongs.
	p, ok := s.plaintext(c.FirstEncrypted)
	return ok && c.App == 0 && p == closeNotifyLen
}
