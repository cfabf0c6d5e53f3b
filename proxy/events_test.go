package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/protocol"
)

// TestEventsConcurrentEndings: 50 connections end at the same moment in
// four ways; each emits exactly one event, with its own identity.
func TestEventsConcurrentEndings(t *testing.T) {
	const n = 50
	fake := newFakeServer(t)
	h := startProxy(t, fake.Addr())

	type ended struct {
		i      int
		addr   string
		connID uint32
		err    error
	}
	ways := []string{"quit", "fin", "rst", "kill"}
	ready := make(chan ended, n)
	start := make(chan struct{})
	done := make(chan ended, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ended{i: i}
			c, err := dialClient(h.addr)
			if err != nil {
				r.err = err
				ready <- r
				return
			}
			defer c.c.Close()
			r.addr = c.c.LocalAddr().String()
			l := login{user: fmt.Sprintf("user%d", i), db: fmt.Sprintf("db%d", i),
				attrs: []protocol.Attr{{Key: "_pid", Value: fmt.Sprint(1000 + i)}, {Key: "program_name", Value: fmt.Sprintf("worker-%d", i)}}}
			if _, err := c.login(l); err != nil {
				r.err = err
			} else if _, err := c.query("SELECT 1"); err != nil {
				r.err = err
			}
			r.connID = c.connID
			ready <- r
			if r.err != nil {
				return
			}
			<-start
			switch ways[i%len(ways)] {
			case "quit":
				r.err = c.command(protocol.ComQuit, "")
				if r.err == nil {
					if err := c.readEnd(); err != io.EOF {
						r.err = fmt.Errorf("after COM_QUIT: %v", err)
					}
				}
			case "fin":
				r.err = c.c.Close()
			case "rst":
				c.rst()
			case "kill":
				if err := c.readEnd(); err != io.EOF {
					r.err = fmt.Errorf("after KILL: %v", err)
				}
			}
			done <- r
		}()
	}
	clients := map[string]ended{}
	var toKill []uint32
	for range n {
		r := <-ready
		if r.err != nil {
			t.Errorf("client %d: %v", r.i, r.err)
			continue
		}
		clients[r.addr] = r
		if ways[r.i%len(ways)] == "kill" {
			toKill = append(toKill, r.connID)
		}
	}
	close(start)
	for _, id := range toKill {
		if !fake.Kill(id, false) {
			t.Errorf("upstream session %d not live", id)
		}
	}
	wg.Wait()
	close(done)
	for r := range done {
		if r.err != nil {
			t.Errorf("client %d (%s): %v", r.i, ways[r.i%len(ways)], r.err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	h.events.waitN(t, n)
	h.waitIdle(t)
	events := h.events.all()
	if len(events) != n {
		t.Fatalf("%d events for %d connections", len(events), n)
	}
	wantVerdict := map[string]string{"quit": VerdictClean, "fin": VerdictClientNoQuit, "rst": VerdictClientReset, "kill": VerdictServerClosed}
	seenConn := map[uint64]bool{}
	for _, ev := range events {
		r, ok := clients[ev.ClientAddr]
		if !ok {
			t.Errorf("event for unknown client %s", ev.ClientAddr)
			continue
		}
		delete(clients, ev.ClientAddr)
		if seenConn[ev.ConnID] {
			t.Errorf("conn_id %d used twice", ev.ConnID)
		}
		seenConn[ev.ConnID] = true
		way := ways[r.i%len(ways)]
		if ev.Verdict != wantVerdict[way] || ev.Phase != "idle" || ev.ServerConnID != r.connID ||
			ev.User != fmt.Sprintf("user%d", r.i) || ev.DB != fmt.Sprintf("db%d", r.i) ||
			ev.Attrs["program_name"] != fmt.Sprintf("worker-%d", r.i) || ev.Attrs["_pid"] != fmt.Sprint(1000+r.i) {
			t.Errorf("client %d (%s): event %+v", r.i, way, ev)
		}
	}
	if len(clients) != 0 {
		t.Errorf("%d clients without an event", len(clients))
	}
}

// lineWriter records each Write call and notices overlapping calls.
type lineWriter struct {
	in      atomic.Bool
	overlap atomic.Bool
	mu      sync.Mutex
	writes  [][]byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if !w.in.CompareAndSwap(false, true) {
		w.overlap.Store(true)
	}
	defer w.in.Store(false)
	w.mu.Lock()
	w.writes = append(w.writes, bytes.Clone(p))
	w.mu.Unlock()
	return len(p), nil
}

// TestJSONLinesConcurrent: one valid JSON line per event, each written by
// one Write call, never interleaved, under concurrent Emit (run with -race).
func TestJSONLinesConcurrent(t *testing.T) {
	const goroutines, each = 32, 50
	w := &lineWriter{}
	j := NewJSONLines(w)
	big := strings.Repeat("v", 40<<10) // a line larger than the sink's buffer
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := &Event{Event: "connection_ended", ConnID: uint64(g*each + i), TS: time.Unix(0, 0).UTC(),
					Verdict: VerdictClean, Attrs: map[string]string{"program_name": "x\n\"y"}}
				if i%10 == 0 {
					ev.Attrs["big"] = big
				}
				j.Emit(ev)
			}
		}()
	}
	wg.Wait()
	if err := j.Err(); err != nil {
		t.Fatal(err)
	}
	if w.overlap.Load() {
		t.Error("Write was called concurrently")
	}
	if len(w.writes) != goroutines*each {
		t.Errorf("%d Write calls for %d events: a line was split", len(w.writes), goroutines*each)
	}
	seen := map[uint64]bool{}
	all := bytes.Join(w.writes, nil)
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	if len(lines) != goroutines*each || !bytes.HasSuffix(all, []byte("\n")) {
		t.Fatalf("%d lines for %d events", len(lines), goroutines*each)
	}
	for _, l := range lines {
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("invalid JSON line %.80q: %v", l, err)
		}
		if ev.Event != "connection_ended" || seen[ev.ConnID] || ev.Attrs["program_name"] != "x\n\"y" {
			t.Errorf("line %.80q: duplicate or wrong", l)
		}
		seen[ev.ConnID] = true
	}
	for _, wr := range w.writes {
		if bytes.Count(wr, []byte("\n")) != 1 || wr[len(wr)-1] != '\n' {
			t.Errorf("a Write call did not carry exactly one whole line: %.80q", wr)
			break
		}
	}
}

type failWriter struct{ n atomic.Int32 }

var errDiskFull = errors.New("disk full")

func (w *failWriter) Write(p []byte) (int, error) {
	w.n.Add(1)
	return 0, errDiskFull
}

func TestJSONLinesErr(t *testing.T) {
	w := &failWriter{}
	j := NewJSONLines(w)
	j.Emit(&Event{Event: "connection_ended", ConnID: 1})
	j.Emit(&Event{Event: "connection_ended", ConnID: 2})
	if err := j.Err(); !errors.Is(err, errDiskFull) {
		t.Errorf("Err() = %v, want the first write error", err)
	}
	if w.n.Load() == 0 {
		t.Error("the sink never wrote")
	}
}
