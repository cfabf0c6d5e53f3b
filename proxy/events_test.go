package proxy

import (
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/abortscope/abortscope/events"
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
	evs := h.events.all()
	if len(evs) != n {
		t.Fatalf("%d events for %d connections", len(evs), n)
	}
	wantVerdict := map[string]events.Verdict{"quit": events.Clean, "fin": events.ClientNoQuit, "rst": events.ClientReset, "kill": events.ServerClosed}
	seenConn := map[uint64]bool{}
	for _, ev := range evs {
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
