package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/transport"
)

// TestMidResultResetsMany: many clients leave MariaDB in the middle of a
// large result through the proxy, half closing their socket with unread
// data in it (the kernel sends RST), half with SO_LINGER 0. Every event
// must say client_abort_in_flight, phase result, close rst, 1160, whichever
// of the proxy's two goroutines met the reset first; MariaDB must count
// each in Aborted_clients and log vio_errno 1160 for each. The number of
// clients is ABORTSCOPE_RESETS (default 500).
func TestMidResultResetsMany(t *testing.T) {
	n := e2ekit.EnvInt(t, "ABORTSCOPE_RESETS", 500)
	user, pass := newUser(t, "resets")
	p := startProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	waitQuiet(t)
	before := counters(t, ctx)
	off := db.LogOffset()

	const workers = 8
	ids := make([]uint32, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ids[i], errs[i] = resetMidResult(t, p.Addr, user, pass, i%2 == 1)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}

	evs := p.Events.Only(t, n)
	waitGone(t, ids...)
	bad := 0
	for _, ev := range evs {
		if ev.Verdict != events.ClientAbortInFlight || ev.Phase != "result" || ev.Close != events.CloseRST ||
			ev.ExpectedServerError != events.ErNetErrorOnWrite || ev.EndedBy != events.ByClient {
			bad++
			if bad <= 10 {
				t.Errorf("server connection %d: %s/%s/%s/%s/%d error %q", ev.ServerConnID, ev.Verdict, ev.Phase,
					ev.EndedBy, ev.Close, ev.ExpectedServerError, ev.Error)
			}
		}
	}
	t.Logf("%d mid-result resets through the proxy: %d recorded client_abort_in_flight/result/rst/1160", n, n-bad)

	var after map[string]int64
	for range 100 { // MariaDB counts each as its thread ends
		if after = counters(t, ctx); after["Aborted_clients"]-before["Aborted_clients"] >= int64(n) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := after["Aborted_clients"] - before["Aborted_clients"]; d != int64(n) {
		t.Errorf("Aborted_clients moved by %d, want %d", d, n)
	}
	log, err := db.ErrorLogSince(off)
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\S+ +\S+ +(\d+) \[\w+\] Could not write packet: .* vio_errno: 1160`).FindAllStringSubmatch(log, -1) {
		logged[m[1]] = true
	}
	missing := 0
	for _, id := range ids {
		if !logged[strconv.FormatUint(uint64(id), 10)] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("MariaDB logged no vio_errno 1160 for %d of the %d connections", missing, n)
	}
}

// resetMidResult connects with go-mysql, reads 50 rows of a large result
// and leaves: with SO_LINGER 0 if linger0, else by closing its socket once
// unread bytes sit in it. It returns the server connection id.
func resetMidResult(t testing.TB, addr, user, pass string, linger0 bool) (uint32, error) {
	c, raw, err := goMySQL(t, addr, user, pass)
	if err != nil {
		return 0, err
	}
	defer raw.Close()
	id := c.GetConnectionID()
	rows := 0
	var res gomysql.Result
	err = c.ExecuteSelectStreaming(bigQuery, &res, func([]gomysql.FieldValue) error {
		if rows++; rows == 50 {
			return errStopReading
		}
		return nil
	}, nil)
	if !errors.Is(err, errStopReading) {
		return id, fmt.Errorf("streaming: %d rows, %v", rows, err)
	}
	if linger0 {
		return id, raw.SetLinger(0)
	}
	return id, waitUnread(raw.TCPConn)
}

// waitUnread waits until bytes the client has not read sit in its socket
// (SIOCINQ), so that closing it sends RST: the kernel resets a socket closed
// with unread data, and sends FIN otherwise.
func waitUnread(c *net.TCPConn) error {
	tc, err := transport.Wrap(c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, ok := transport.Pending(tc)
		switch {
		case !ok:
			return errors.New("SIOCINQ unavailable on the client socket (Linux only)")
		case n > 0:
			return nil
		case time.Now().After(deadline):
			return errors.New("no unread bytes in the client's socket after 15 s")
		}
		time.Sleep(time.Millisecond)
	}
}
