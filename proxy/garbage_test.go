package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/protocol"
)

// noise returns n bytes from a fixed seed.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// garbageGreeting is what a session whose id is a multiple of 5 sends
// instead of a greeting: a 5-byte "packet" with sequence id 0xee (a marker)
// holding its id and no protocol version, then noise of a length the id
// decides, so that a client can check it received exactly that. (The proxy
// holds a first packet until it is whole, as any MySQL client does, so the
// header declares what follows.)
func garbageGreeting(id uint32) []byte {
	if id%5 != 0 {
		return nil
	}
	b := binary.LittleEndian.AppendUint32([]byte{5, 0, 0, 0xee, 0xee}, id)
	return append(b, noise(uint64(id), int(id%7)*3000+17)...)
}

// withGarbageReplies makes "GARBAGE seed n" answer n bytes of noise, then
// close: a server that goes mad mid-reply.
func withGarbageReplies(f *fakeServer) {
	f.garbage = garbageGreeting
	f.onQuery = func(s *fakeSession, q string) (bool, error) {
		var seed uint64
		var n int
		if _, err := fmt.Sscanf(q, "GARBAGE %d %d", &seed, &n); err != nil {
			return false, nil
		}
		if err := s.write(noise(seed, n)); err != nil {
			return true, err
		}
		return true, errEndSession
	}
}

// TestGarbage: clients and servers that do not speak MySQL never crash the
// proxy; every connection still emits one event, the bytes still cross
// unchanged, and well-behaved connections keep working meanwhile.
func TestGarbage(t *testing.T) {
	const n = 40
	fake := newFakeServer(t, withGarbageReplies)
	h := startProxy(t, fake.Addr())

	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := garbageClient(h.addr, i); err != nil {
				errs <- fmt.Errorf("client %d (role %d): %w", i, i%4, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The proxy still works (dialing again if this session is one of
	// the fake's garbage greeters).
	var c *rawClient
	for range 2 {
		c = mustDial(t, h.addr)
		if b, err := c.r.Peek(4); err != nil || b[3] != 0xee {
			break
		}
		c.c.Close()
	}
	if _, err := c.login(login{user: "after", db: "shop"}); err != nil {
		t.Fatal(err)
	}
	if rows, err := c.query("ROWS 1000 100"); err != nil || rows != 1000 {
		t.Fatalf("after the garbage: %d rows, %v", rows, err)
	}
	c.command(protocol.ComQuit, "")
	if err := c.readEnd(); err != io.EOF {
		t.Errorf("after COM_QUIT: %v", err)
	}

	h.waitIdle(t)
	evs := h.events.all()
	if len(evs) < n+1 || len(evs) > n+2 {
		t.Errorf("%d events for %d or %d connections", len(evs), n+1, n+2)
	}
	conns := map[uint64]bool{}
	for _, ev := range evs {
		if conns[ev.ConnID] {
			t.Errorf("two events for conn_id %d", ev.ConnID)
		}
		conns[ev.ConnID] = true
		if ev.Verdict == "" || strings.Contains(ev.Error, "internal error") || strings.Contains(ev.Error, "without a recorded cause") {
			t.Errorf("event: verdict %q error %q", ev.Verdict, ev.Error)
		}
	}
	// The garbage connections end concurrently: their events may come
	// after this one's, so look it up by user.
	var after *events.Event
	for i := range evs {
		if evs[i].User == "after" {
			after = &evs[i]
		}
	}
	if after == nil || after.Verdict != events.Clean {
		t.Errorf("the connection after the garbage: %+v", after)
	}
}

// garbageClient plays role i%4: noise before the greeting; noise as the
// handshake response; noise after logging in; or a good client whose server
// answers noise mid-reply. A client that gets a garbage greeting checks it
// byte for byte and leaves.
func garbageClient(addr string, i int) error {
	c, err := dialClient(addr)
	if err != nil {
		return err
	}
	defer c.c.Close()
	junk := noise(uint64(1000+i), 1+i*211%5000)
	if i%4 == 0 {
		if err := c.write(junk); err != nil {
			return err
		}
		c.c.CloseWrite()
		c.readEnd()
		return nil
	}
	if b, err := c.r.Peek(4); err != nil {
		return fmt.Errorf("no greeting: %w", err)
	} else if b[3] == 0xee {
		return checkGarbageGreeting(c)
	}
	switch i % 4 {
	case 1:
		if err := c.readGreeting(); err != nil {
			return err
		}
		c.write(junk)
		c.c.Close()
	case 2:
		if _, err := c.login(login{user: fmt.Sprint("g", i)}); err != nil {
			return err
		}
		c.write(protocol.AppendPacket(nil, 0, junk[:min(len(junk), 3000)]))
		c.write(junk)
		c.c.Close()
	case 3:
		if _, err := c.login(login{user: fmt.Sprint("g", i)}); err != nil {
			return err
		}
		if rows, err := c.query("SELECT 1"); err != nil || rows != 1 {
			return fmt.Errorf("SELECT 1: %d rows, %v", rows, err)
		}
		size := 1 + i*997%100000
		if err := c.command(protocol.ComQuery, "GARBAGE "+strconv.Itoa(i)+" "+strconv.Itoa(size)); err != nil {
			return err
		}
		before := c.recv.Len()
		if err := c.readEnd(); err != io.EOF {
			return fmt.Errorf("after the mad reply: %v", err)
		}
		if got := c.recv.Bytes()[before:]; !bytes.Equal(got, noise(uint64(i), size)) {
			return fmt.Errorf("the mad reply changed on the way: %s", firstDiff(got, noise(uint64(i), size)))
		}
	}
	return nil
}

func checkGarbageGreeting(c *rawClient) error {
	b, err := c.r.Peek(9)
	if err != nil {
		return fmt.Errorf("garbage greeting cut short: %w", err)
	}
	want := garbageGreeting(binary.LittleEndian.Uint32(b[5:]))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, got); err != nil {
		return fmt.Errorf("garbage greeting cut short: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("the garbage greeting changed on the way: " + firstDiff(got, want))
	}
	return nil
}
