package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
)

// An ending is a way a churn connection ends, with the verdict its event
// must carry.
type ending struct {
	name    string
	weight  int
	verdict events.Verdict
	end     func(t testing.TB, r *e2ekit.Raw)
}

var endings = []ending{
	{"quit", 30, events.Clean, func(t testing.TB, r *e2ekit.Raw) {
		r.Command(protocol.ComQuit, nil)
		r.ReadUntilEnd()
	}},
	{"fin", 20, events.ClientNoQuit, func(t testing.TB, r *e2ekit.Raw) { r.Fin() }},
	{"rst", 20, events.ClientReset, func(t testing.TB, r *e2ekit.Raw) { r.Rst() }},
	{"rst mid-result", 20, events.ClientAbortInFlight, func(t testing.TB, r *e2ekit.Raw) {
		r.Query("SELECT seq, REPEAT('x', 100) FROM mysql.seq_1_to_100000")
		r.Read() // the column count: the reply is streaming
		r.Rst()
	}},
	{"server KILL", 8, events.ServerClosed, func(t testing.TB, r *e2ekit.Raw) {
		if _, err := db.DB().Exec(fmt.Sprintf("KILL %d", r.ID)); err != nil {
			t.Errorf("KILL %d: %v", r.ID, err)
		}
		r.ReadUntilEnd()
	}},
	{"wait_timeout", 2, events.ServerIdleTimeout, func(t testing.TB, r *e2ekit.Raw) {
		r.Exec("SET SESSION wait_timeout = 1")
		r.ReadUntilEnd()
	}},
}

// pick draws an ending by weight.
func pick(rng *rand.Rand) ending {
	total := 0
	for _, e := range endings {
		total += e.weight
	}
	n := rng.IntN(total)
	for _, e := range endings {
		if n < e.weight {
			return e
		}
		n -= e.weight
	}
	panic("unreachable")
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settle waits until the goroutines and descriptors are back to at most
// the given numbers (plus slack for the runtime and the database pool), and
// returns what it measured.
func settle(t testing.TB, goroutines, fds int) (int, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds || time.Now().After(deadline) {
			return g, f
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChurn: ABORTSCOPE_CHURN connections (default 5000), 64 at a time,
// each ending at random (COM_QUIT, FIN, RST, RST mid-result, the server's
// KILL, wait_timeout): exactly one event per connection, each with the
// verdict its ending calls for, and afterwards as many goroutines and file
// descriptors as before.
func TestChurn(t *testing.T) {
	n := e2ekit.EnvInt(t, "ABORTSCOPE_CHURN", 5000)
	const workers = 64
	p := e2ekit.StartProxy(t, db.Addr())
	// The admin pool (for KILL) keeps one connection open, before the
	// count as after it.
	db.DB().SetMaxIdleConns(1)
	db.DB().Exec("SELECT 1")
	g0, f0 := runtime.NumGoroutine(), openFDs(t)

	type result struct {
		id     uint32
		ending ending
	}
	results := make(chan result, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range jobs {
				e := pick(rng)
				r := e2ekit.DialRaw(t, p.Addr)
				r.Login("root", "", 0)
				e.end(t, r)
				r.C.Close()
				results <- result{r.ID, e}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(results)
	elapsed := time.Since(start)

	want := map[uint32]ending{}
	counts := map[string]int{}
	for r := range results {
		want[r.id] = r.ending
		counts[r.ending.name]++
	}
	if len(want) != n {
		t.Fatalf("%d server connection ids for %d connections", len(want), n)
	}
	evs := p.Events.Only(t, n)
	seen := map[uint32]bool{}
	wrong := 0
	for _, ev := range evs {
		e, ok := want[ev.ServerConnID]
		switch {
		case !ok:
			t.Errorf("event for unknown server connection %d", ev.ServerConnID)
		case seen[ev.ServerConnID]:
			t.Errorf("two events for server connection %d", ev.ServerConnID)
		case ev.Verdict != e.verdict:
			wrong++
			if wrong <= 10 {
				t.Errorf("server connection %d ended by %s: verdict %s, want %s (phase %s close %s)", ev.ServerConnID, e.name, ev.Verdict, e.verdict, ev.Phase, ev.Close)
			}
		}
		seen[ev.ServerConnID] = true
	}
	if wrong > 0 {
		t.Errorf("%d of %d verdicts wrong", wrong, n)
	}
	// The proxy's own goroutines (accept loop) and listener stay; every
	// connection's are gone.
	g1, f1 := settle(t, g0+2, f0+2)
	t.Logf("%d connections (%v), %d at a time, in %v (%.0f/s); goroutines %d before, %d after; file descriptors %d before, %d after",
		n, counts, workers, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), g0, g1, f0, f1)
	if g1 > g0+2 || f1 > f0+2 {
		t.Errorf("leak: goroutines %d → %d, file descriptors %d → %d", g0, g1, f0, f1)
	}
}
