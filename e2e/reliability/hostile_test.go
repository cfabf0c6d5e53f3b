package reliability

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
	"github.com/abortscope/abortscope/proxy"
)

// pyFlood connects to host:port n times, c at once, closing each at once,
// and prints how many connections it made.
const pyFlood = `
import socket, sys, threading
host, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
done = [0]
lock = threading.Lock()
def worker(k):
    for _ in range(k):
        s = socket.create_connection((host, port), timeout=10)
        s.close()
        with lock:
            done[0] += 1
ts = [threading.Thread(target=worker, args=(n // c + (1 if i < n % c else 0),)) for i in range(c)]
[t.start() for t in ts]
[t.join() for t in ts]
print(done[0])
`

// pinger runs COM_PING on a logged-in connection until stop, recording
// each round trip.
type pinger struct {
	mu    sync.Mutex
	times []time.Duration
	fails atomic.Int64
}

func (pg *pinger) run(t testing.TB, addr string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	r := e2ekit.DialRaw(t, addr)
	r.Login("root", "", 0)
	for {
		select {
		case <-stop:
			r.Command(protocol.ComQuit, nil)
			return
		default:
		}
		start := time.Now()
		r.Command(protocol.ComPing, nil)
		if p := r.Read(); len(p) == 0 || p[0] != 0 {
			pg.fails.Add(1)
		}
		pg.mu.Lock()
		pg.times = append(pg.times, time.Since(start))
		pg.mu.Unlock()
	}
}

// percentiles returns the 50th and 99th percentile round trips since the
// n-th, and how many there were.
func (pg *pinger) percentiles(from int) (p50, p99 time.Duration, n int) {
	pg.mu.Lock()
	ts := slices.Clone(pg.times[from:])
	pg.mu.Unlock()
	if len(ts) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ts)
	return ts[len(ts)/2], ts[len(ts)*99/100], len(ts)
}

func (pg *pinger) count() int {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return len(pg.times)
}

// endWithin reads c until the proxy closes it, and fails the test unless
// that happens within d: every hostile client gets a clear end, soon.
func endWithin(t testing.TB, c net.Conn, d time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the proxy had not closed the connection after %v (read %d bytes)", d, len(got))
	}
	return got
}

// TestHostileClients: clients that send random bytes, an HTTP request, a
// 16 MiB length header and nothing after it, a login one byte at a time,
// or nothing at all, and 2000 that connect and drop at once: each gets a
// clear outcome within --handshake-timeout (1 s here) and one event, while
// a well-behaved client keeps its round trips (measured and logged: the
// p50 and p99 of COM_PING before and during).
func TestHostileClients(t *testing.T) {
	p := e2ekit.StartProxy(t, db.Addr(), func(p *proxy.Proxy) { p.HandshakeTimeout = time.Second })
	p.AllowDesyncs = true // noise is not MySQL protocol
	// Two well-behaved clients ping: one through the proxy, one straight
	// to MariaDB, so that what the flood costs the machine (client, proxy
	// and server share its cores) is told from what it costs the proxy.
	pg, direct := &pinger{}, &pinger{}
	stop, done, directDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go pg.run(t, p.Addr, stop, done)
	go direct.run(t, db.Addr(), stop, directDone)
	for deadline := time.Now().Add(30 * time.Second); pg.count() < 200 || direct.count() < 200; { // a baseline
		if time.Now().After(deadline) {
			t.Fatalf("200 pings each took over 30 s: %d through the proxy, %d direct", pg.count(), direct.count())
		}
		time.Sleep(time.Millisecond)
	}
	base50, base99, baseN := pg.percentiles(0)
	dbase50, dbase99, _ := direct.percentiles(0)
	during, ddir := pg.count(), direct.count()

	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var wg sync.WaitGroup
	hostile := func(name string, f func(t *testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	}
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rand.Uint32())
	}
	hostile("random bytes", func(t *testing.T) {
		c := dial()
		c.Write(noise)
		endWithin(t, c, 5*time.Second)
	})
	hostile("an HTTP request", func(t *testing.T) {
		c := dial()
		c.Write([]byte("GET / HTTP/1.1\r\nHost: db\r\n\r\n"))
		endWithin(t, c, 5*time.Second)
	})
	hostile("a 16 MiB header, nothing after", func(t *testing.T) {
		c := dial()
		c.Write([]byte{0xff, 0xff, 0xff, 1})
		endWithin(t, c, 5*time.Second)
	})
	hostile("silent", func(t *testing.T) {
		c := dial()
		got := endWithin(t, c, 5*time.Second)
		// The greeting, then ERR 1043 saying why, with sequence id 1.
		g := 4 + (int(got[0]) | int(got[1])<<8 | int(got[2])<<16)
		if len(got) < g+5 || got[g+3] != 1 || got[g+4] != 0xff || !bytes.Contains(got[g:], []byte("no login within 1s")) {
			t.Errorf("silent client got % x after the greeting; want ERR 1043 'no login within 1s'", got[min(g, len(got)):])
		}
	})
	hostile("a login one byte at a time", func(t *testing.T) {
		// Its own proxy, with the default --handshake-timeout (10 s): the
		// pacing (88 bytes, 2 ms apart) must not race the 1 s of the
		// others' proxy, however slow a loaded machine makes the sleeps.
		slow := e2ekit.StartProxy(t, db.Addr())
		r := e2ekit.DialRaw(t, slow.Addr)
		r.Greeting()
		pkt := protocol.AppendPacket(nil, 1, r.ResponsePacket("root", "", 0))
		for _, b := range pkt {
			r.C.Write([]byte{b})
			time.Sleep(2 * time.Millisecond) // pacing the bytes is the point
		}
		if ok := r.Auth(""); ok[0] != 0 {
			t.Errorf("slow login: %s", e2ekit.ErrText(ok))
		}
		r.Command(protocol.ComQuit, nil)
		r.ReadUntilEnd()
		if ev := slow.Events.Only(t, 1)[0]; ev.Verdict != events.Clean {
			t.Errorf("slow login: verdict %s, want clean", ev.Verdict)
		}
	})
	hostile("2000 connect and drop", func(t *testing.T) {
		// From another process, 50 at a time: the load is the proxy's to
		// carry, not this test process's scheduler's.
		host, port, _ := net.SplitHostPort(p.Addr)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pyFlood, host, port, "2000", "50").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "2000" {
			t.Errorf("flood: %v %s", err, out)
		}
	})
	wg.Wait()
	dur50, dur99, durN := pg.percentiles(during)
	ddur50, ddur99, _ := direct.percentiles(ddir)
	close(stop)
	<-done
	<-directDone

	// One event per connection: 4 hostile, 2000 dropped, the pinger.
	evs := p.Events.Only(t, 2005)
	verdicts := map[events.Verdict]int{}
	for _, ev := range evs {
		verdicts[ev.Verdict]++
		if ev.Verdict == events.InternalError {
			t.Errorf("internal error: %+v", ev)
		}
	}
	if verdicts[events.Clean] != 1 || verdicts[events.HandshakeAbort] != 2004 {
		t.Errorf("verdicts %v: want 1 clean (the pinger), the rest handshake_abort or the server's refusal", verdicts)
	}
	if f := pg.fails.Load(); f > 0 {
		t.Errorf("%d pings failed", f)
	}
	t.Logf("COM_PING round trip of a well-behaved client through the proxy: p50 %v p99 %v over %d before; p50 %v p99 %v over %d during the hostile clients (straight to MariaDB: p50 %v p99 %v before, p50 %v p99 %v during); verdicts %v",
		base50, base99, baseN, dur50, dur99, durN, dbase50, dbase99, ddur50, ddur99, verdicts)
}
