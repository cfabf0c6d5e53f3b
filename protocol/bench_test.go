package protocol

import (
	"fmt"
	"testing"
)

// rowsWorkload is one COM_QUERY and its text result: 4 columns, n rows.
type rowsWorkload struct {
	query, result []byte
	rows          int
}

func newRowsWorkload(n int) rowsWorkload {
	c := &conv{}
	q := c.cmd(comQuery("SELECT id, name, email, created FROM users"))
	rows := make([][]byte, n)
	for i := range rows {
		rows[i] = textRow([]byte(fmt.Sprint(i)), []byte("some user name"),
			[]byte("someone@example.com"), []byte("2024-05-01 12:00:00"))
	}
	return rowsWorkload{query: q, result: resultSet(c, false, 4, rows, ServerStatusAutocommit), rows: n}
}

// loggedIn returns a tracker past the handshake.
func loggedIn(extra uint64) *Tracker {
	tr := NewTracker(Config{})
	for _, st := range login(&conv{}, extra) {
		if st.check == nil {
			tr.Feed(st.dir, st.data)
		}
	}
	return tr
}

// play feeds one query and its result, the result in 64 KiB chunks as a
// proxy's read buffer would deliver it.
func (w rowsWorkload) play(tr *Tracker) {
	tr.Feed(ClientToServer, w.query)
	for b := w.result; len(b) > 0; {
		n := min(len(b), 64<<10)
		tr.Feed(ServerToClient, b[:n])
		b = b[n:]
	}
}

func BenchmarkTrackerRows(b *testing.B) {
	w := newRowsWorkload(20000)
	tr := loggedIn(0)
	w.play(tr) // warm up: the capture buffer and the command queue reach their size
	b.ReportAllocs()
	b.SetBytes(int64(len(w.result) + len(w.query)))
	for b.Loop() {
		w.play(tr)
	}
	if s := tr.Snapshot(); s.Phase != PhaseIdle || s.Desyncs != 0 {
		b.Fatalf("tracker lost: %+v", s)
	}
}

// The steady state of the hot path does not allocate.
func TestTrackerRowsNoAllocs(t *testing.T) {
	w := newRowsWorkload(500)
	tr := loggedIn(0)
	w.play(tr)
	// AllocsPerRun makes one warm-up run, then 20 measured ones.
	if n := testing.AllocsPerRun(20, func() { w.play(tr) }); n != 0 {
		t.Errorf("%v allocations per query", n)
	}
	if s := tr.Snapshot(); s.Phase != PhaseIdle || s.Desyncs != 0 || s.Commands != 1+1+20 {
		t.Errorf("tracker lost: %+v", s)
	}
}
