package reliability

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/e2ekit"
	"github.com/abortscope/abortscope/protocol"
)

// peakRSS returns this process's peak resident set (VmHWM) in bytes.
func peakRSS(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// resetPeak starts the peak RSS over from the current RSS (Linux 4.0+).
func resetPeak(t testing.TB) {
	t.Helper()
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting VmHWM: %v", err)
	}
}

// drainResult reads a text result set of one column from c to its end
// (CLIENT_DEPRECATE_EOF), through a fixed buffer, and returns the packets
// after the metadata and the bytes it read. A row of 16 MiB or more comes
// as several packets, all of 0xffffff bytes but the last.
func drainResult(t testing.TB, r *bufio.Reader) (packets, bytes int64) {
	t.Helper()
	var h [4]byte
	packet := func() (first byte, n int) {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("reading the result: %v", err)
		}
		n = int(h[0]) | int(h[1])<<8 | int(h[2])<<16
		bytes += int64(n) + 4
		if n == 0 {
			return 0, 0
		}
		first, _ = r.ReadByte()
		if _, err := io.CopyN(io.Discard, r, int64(n-1)); err != nil {
			t.Fatalf("reading the result: %v", err)
		}
		return first, n
	}
	if first, _ := packet(); first != 1 {
		t.Fatalf("column count %d, want 1", first)
	}
	packet()      // the column definition
	cont := false // the previous packet was full: this one goes on with its row
	for {
		first, n := packet()
		if !cont && first == 0xfe && n < 0xffffff {
			return packets, bytes
		}
		if !cont && first == 0xff {
			t.Fatal("the server sent an ERR mid-result")
		}
		packets++
		cont = n == 0xffffff
	}
}

// TestMemoryUnderGigabyte: a result holding one row of 1 GiB (65
// packets, 64 of them 16 MiB) and a 256 MiB LOAD DATA LOCAL upload pass
// through the proxy while this process's peak resident memory (the proxy,
// and a client reading through a fixed buffer) grows by no more than a few
// buffers' worth: the relay never holds a packet whole. The figures are
// logged.
func TestMemoryUnderGigabyte(t *testing.T) {
	if _, err := db.DB().Exec("SET GLOBAL max_allowed_packet = 1073741824"); err != nil {
		t.Fatal(err)
	}
	defer db.DB().Exec("SET GLOBAL max_allowed_packet = 67108864")
	if _, err := db.DB().Exec("CREATE OR REPLACE TABLE mysql.abortscope_sink (v LONGTEXT) ENGINE=BLACKHOLE"); err != nil {
		if _, err := db.DB().Exec("INSTALL SONAME 'ha_blackhole'"); err != nil {
			t.Fatalf("BLACKHOLE engine: %v", err)
		}
		if _, err := db.DB().Exec("CREATE OR REPLACE TABLE mysql.abortscope_sink (v LONGTEXT) ENGINE=BLACKHOLE"); err != nil {
			t.Fatal(err)
		}
	}
	p := e2ekit.StartProxy(t, db.Addr())
	const limit = 12 << 20 // growth allowed: buffers, GC slack; less than one 16 MiB packet

	r := e2ekit.DialRaw(t, p.Addr)
	r.Login("root", "", 0)
	br := bufio.NewReaderSize(r.C, 64<<10)
	resetPeak(t)
	before := peakRSS(t)
	start := time.Now()
	r.Query("SELECT REPEAT('x', 1073741824)")
	packets, n := drainResult(t, br)
	elapsed := time.Since(start)
	grew := peakRSS(t) - before
	if packets != 65 || n < 1<<30 {
		t.Fatalf("%d packets, %d bytes; want a row of 1 GiB in 65 packets", packets, n)
	}
	t.Logf("a 1 GiB row: %d bytes in %v (%.0f MB/s); peak RSS %d MiB before, grew by %.1f MiB", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds()/1e6, before>>20, float64(grew)/(1<<20))
	if grew > limit {
		t.Errorf("peak RSS grew by %d MiB relaying a 1 GiB row; want at most %d", grew>>20, limit>>20)
	}

	// The upload: 4096 lines of 64 KiB, each in a packet of its own.
	r.Query("LOAD DATA LOCAL INFILE 'big' INTO TABLE mysql.abortscope_sink")
	if p := r.Read(); p[0] != 0xfb {
		t.Fatalf("no LOCAL INFILE request: %s", e2ekit.ErrText(p))
	}
	line := []byte(strings.Repeat("x", 64<<10-1) + "\n")
	pkt := protocol.AppendPacket(nil, 0, line)
	resetPeak(t)
	before = peakRSS(t)
	start = time.Now()
	for i := range 4096 {
		pkt[3] = r.Seq
		r.Seq++
		if _, err := r.C.Write(pkt); err != nil {
			t.Fatalf("upload, packet %d: %v", i, err)
		}
	}
	r.Write(nil) // the end of the file
	if ok := r.Read(); ok[0] != 0 {
		t.Fatalf("LOAD DATA: %s", e2ekit.ErrText(ok))
	}
	elapsed = time.Since(start)
	grew = peakRSS(t) - before
	t.Logf("256 MiB LOAD DATA LOCAL: %v (%.0f MB/s); peak RSS %d MiB before, grew by %.1f MiB", elapsed.Round(time.Millisecond),
		float64(4096*len(pkt))/elapsed.Seconds()/1e6, before>>20, float64(grew)/(1<<20))
	if grew > limit {
		t.Errorf("peak RSS grew by %d MiB relaying a 256 MiB upload; want at most %d", grew>>20, limit>>20)
	}
	r.Command(protocol.ComQuit, nil)
	r.ReadUntilEnd()
}
