package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWriterConcurrent: one valid JSON line per event, each written by one
// Write call, never interleaved, under concurrent Emit (run with -race);
// Close writes everything queued.
func TestWriterConcurrent(t *testing.T) {
	const goroutines, each = 32, 50
	out := &lineWriter{}
	w := NewWriter(out, WriterOptions{Queue: goroutines * each})
	big := strings.Repeat("v", 40<<10)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := &Event{Event: "connection_ended", ConnID: uint64(g*each + i), TS: time.Unix(0, 0).UTC(),
					Verdict: Clean, Attrs: map[string]string{"program_name": "x\n\"y"}}
				if i%10 == 0 {
					ev.Attrs["big"] = big
				}
				w.Emit(ev)
			}
		}()
	}
	wg.Wait()
	closeWriter(t, w)
	if st := w.Stats(); st.Written != goroutines*each || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Errorf("stats %+v, want %d written", st, goroutines*each)
	}
	if out.overlap.Load() {
		t.Error("Write was called concurrently")
	}
	if len(out.writes) != goroutines*each {
		t.Fatalf("%d Write calls for %d events: a line was split", len(out.writes), goroutines*each)
	}
	seen := map[uint64]bool{}
	for _, wr := range out.writes {
		if bytes.Count(wr, []byte("\n")) != 1 || wr[len(wr)-1] != '\n' {
			t.Fatalf("a Write call did not carry exactly one whole line: %.80q", wr)
		}
		var ev Event
		if err := json.Unmarshal(wr, &ev); err != nil {
			t.Fatalf("invalid JSON line %.80q: %v", wr, err)
		}
		if ev.Event != "connection_ended" || seen[ev.ConnID] || ev.Attrs["program_name"] != "x\n\"y" {
			t.Errorf("line %.80q: duplicate or wrong", wr)
		}
		seen[ev.ConnID] = true
	}
}

// flakyWriter fails the writes whose number is in fail.
type flakyWriter struct {
	mu    sync.Mutex
	n     int
	fail  map[int]bool
	lines []string
}

var errDiskFull = errors.New("disk full")

func (w *flakyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if w.fail[w.n] {
		return 0, errDiskFull
	}
	w.lines = append(w.lines, string(p))
	return len(p), nil
}

// TestWriterGoesOnAfterAnError: a failed write loses its line only; the
// lines after it are written, and each error is reported and counted.
func TestWriterGoesOnAfterAnError(t *testing.T) {
	out := &flakyWriter{fail: map[int]bool{2: true, 3: true}}
	var reported []error
	var mu sync.Mutex
	w := NewWriter(out, WriterOptions{OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }})
	for i := range 5 {
		w.Emit(&Event{Event: "connection_ended", ConnID: uint64(i + 1)})
	}
	closeWriter(t, w)
	if st := w.Stats(); st.Written != 3 || st.WriteErrors != 2 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 3 written, 2 write errors", st)
	}
	if len(reported) != 2 || !errors.Is(reported[0], errDiskFull) {
		t.Errorf("reported %v, want two disk-full errors", reported)
	}
	var ids []uint64
	for _, l := range out.lines {
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ConnID)
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 4 || ids[2] != 5 {
		t.Errorf("written conn_ids %v, want [1 4 5]", ids)
	}
}

// blockedWriter blocks every Write until release is closed.
type blockedWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

// TestWriterNeverBlocksEmit: with the output stuck, Emit returns at once;
// what does not fit the queue is dropped and counted; Close gives up at its
// deadline and says how much was left.
func TestWriterNeverBlocksEmit(t *testing.T) {
	out := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := NewWriter(out, WriterOptions{Queue: 4})
	w.Emit(&Event{ConnID: 1})
	<-out.entered // the goroutine holds line 1 in a Write that does not return
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			w.Emit(&Event{ConnID: uint64(i + 2)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a stuck output")
	}
	if st := w.Stats(); st.Dropped != 6 {
		t.Errorf("stats %+v, want 6 dropped (10 emitted into a queue of 4)", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close on a stuck output = %v, want the deadline", err)
	}
	close(out.release)
	closeWriter(t, w) // a second Close waits for the rest
	if st := w.Stats(); st.Written != 5 || st.Dropped != 6 {
		t.Errorf("after release: %+v, want 5 written, 6 dropped", st)
	}
	w.Emit(&Event{ConnID: 99})
	if st := w.Stats(); st.Dropped != 7 {
		t.Errorf("an Emit after Close was not counted as dropped: %+v", st)
	}
}

// shortFile is an *os.File whose writes stop short after limit bytes, as on
// a full disk.
type shortFile struct {
	*os.File
	limit int
}

func (f *shortFile) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		return n, errDiskFull
	}
	return f.File.Write(p)
}

// TestWriterCutsPartialLine: a line written only in part (a full disk) is
// cut off again, so the file holds whole lines only.
func TestWriterCutsPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := &shortFile{File: f, limit: 1000}
	w := NewWriter(out, WriterOptions{})
	w.Emit(&Event{Event: "connection_ended", ConnID: 1})
	w.Emit(&Event{Event: "connection_ended", ConnID: 2, Attrs: map[string]string{"big": strings.Repeat("x", 2000)}})
	w.Emit(&Event{Event: "connection_ended", ConnID: 3})
	closeWriter(t, w)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("file holds %d lines, want 2 whole ones:\n%s", len(lines), data)
	}
	for _, l := range lines {
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Errorf("torn line %.80q: %v", l, err)
		}
	}
	if st := w.Stats(); st.Written != 2 || st.WriteErrors != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestWriterCutsPartialLineWithoutAppend: the same for a file opened as a
// shell's `> file` opens it (no O_APPEND): the next line starts where the
// partial one began, with no gap of NUL bytes.
func TestWriterCutsPartialLineWithoutAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter(&shortFile{File: f, limit: 1000}, WriterOptions{})
	w.Emit(&Event{Event: "connection_ended", ConnID: 1})
	w.Emit(&Event{Event: "connection_ended", ConnID: 2, Attrs: map[string]string{"big": strings.Repeat("x", 2000)}})
	w.Emit(&Event{Event: "connection_ended", ConnID: 3})
	closeWriter(t, w)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		t.Fatalf("NUL bytes in the file: the next line was written after a gap")
	}
	if n := bytes.Count(data, []byte("\n")); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
}

// panicWriter panics on its first write.
type panicWriter struct{ n atomic.Int32 }

func (w *panicWriter) Write(p []byte) (int, error) {
	if w.n.Add(1) == 1 {
		panic("output failed")
	}
	return len(p), nil
}

// TestWriterSurvivesPanic: a panic in the output loses its line only.
func TestWriterSurvivesPanic(t *testing.T) {
	w := NewWriter(&panicWriter{}, WriterOptions{})
	for i := range 3 {
		w.Emit(&Event{ConnID: uint64(i)})
	}
	closeWriter(t, w)
	if st := w.Stats(); st.Written != 2 || st.WriteErrors != 1 {
		t.Errorf("stats %+v, want 2 written and 1 error", st)
	}
}

// TestWriterReopenBetweenLines: Reopen switches the output between two
// lines under concurrent Emit (run with -race): open is never called while
// a line is being written, each line goes whole to one output, none is
// lost or written twice, and no line emitted after a Reopen returned goes
// to an output it switched away from.
func TestWriterReopenBetweenLines(t *testing.T) {
	const goroutines, each, reopens = 8, 200, 50
	outs := make([]*lineWriter, reopens+1)
	for i := range outs {
		outs[i] = &lineWriter{}
	}
	w := NewWriter(outs[0], WriterOptions{Queue: goroutines*each + reopens})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Emit(&Event{Event: "connection_ended", ConnID: uint64(g*each + i)})
			}
		}()
	}
	var midLine atomic.Int32
	for r := range reopens {
		err := w.Reopen(context.Background(), func(old io.Writer) (io.Writer, error) {
			if old != outs[r] {
				t.Errorf("reopen %d: open was given another output than the one in use", r)
			}
			if outs[r].in.Load() {
				midLine.Add(1)
			}
			return outs[r+1], nil
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Emit(&Event{Event: "marker", ConnID: uint64(1_000_000 + r)})
	}
	wg.Wait()
	closeWriter(t, w)
	if n := midLine.Load(); n > 0 {
		t.Errorf("open was called %d times while a line was being written", n)
	}
	if st := w.Stats(); st.Written != goroutines*each+reopens || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Errorf("stats %+v, want %d written", st, goroutines*each+reopens)
	}
	seen := map[uint64]bool{}
	markers := 0
	for o, out := range outs {
		if out.overlap.Load() {
			t.Errorf("output %d: Write called concurrently", o)
		}
		for _, wr := range out.writes {
			var ev Event
			if bytes.Count(wr, []byte("\n")) != 1 || json.Unmarshal(wr, &ev) != nil {
				t.Fatalf("output %d: a Write call did not carry one whole line: %.80q", o, wr)
			}
			if seen[ev.ConnID] {
				t.Errorf("conn_id %d written twice", ev.ConnID)
			}
			seen[ev.ConnID] = true
			if ev.Event == "marker" {
				markers++
				if r := int(ev.ConnID - 1_000_000); o <= r {
					t.Errorf("the line emitted after Reopen %d went to output %d, which it had switched away from", r, o)
				}
			}
		}
	}
	if len(seen) != goroutines*each+reopens || markers != reopens {
		t.Errorf("%d distinct lines (%d markers), want %d (%d)", len(seen), markers, goroutines*each+reopens, reopens)
	}
}

// TestWriterReopenFailure: an open that fails, or panics, leaves the
// output as it was and its error is Reopen's; the writer goes on.
func TestWriterReopenFailure(t *testing.T) {
	out, other := &lineWriter{}, &lineWriter{}
	w := NewWriter(out, WriterOptions{})
	errNoDir := errors.New("no such directory")
	if err := w.Reopen(context.Background(), func(io.Writer) (io.Writer, error) { return other, errNoDir }); !errors.Is(err, errNoDir) {
		t.Errorf("Reopen = %v, want open's error", err)
	}
	if err := w.Reopen(context.Background(), func(io.Writer) (io.Writer, error) { panic("open failed") }); err == nil || !strings.Contains(err.Error(), "open failed") {
		t.Errorf("Reopen with a panicking open = %v, want an error saying so", err)
	}
	w.Emit(&Event{ConnID: 1})
	closeWriter(t, w)
	if len(out.writes) != 1 || len(other.writes) != 0 {
		t.Errorf("%d lines to the first output, %d to the one a failed open returned; want 1 and 0", len(out.writes), len(other.writes))
	}
}

// TestWriterReopenStuckOrClosed: with a write that does not return,
// Reopen gives up at its deadline without calling open; after Close it
// answers ErrClosed, again without calling open.
func TestWriterReopenStuckOrClosed(t *testing.T) {
	out := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := NewWriter(out, WriterOptions{})
	w.Emit(&Event{ConnID: 1})
	<-out.entered
	var called atomic.Bool
	open := func(old io.Writer) (io.Writer, error) { called.Store(true); return old, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Reopen(ctx, open); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Reopen with a stuck write = %v, want the deadline", err)
	}
	close(out.release)
	closeWriter(t, w)
	if err := w.Reopen(context.Background(), open); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}
	if called.Load() {
		t.Error("open was called")
	}
}

// truncatedFile is an *os.File whose writes stop short after limit bytes
// (a full disk) and, before the short write returns, is truncated to zero
// by someone else: logrotate copytruncate between the partial line and
// its cut-off.
type truncatedFile struct {
	*os.File
	path  string
	limit int
}

func (f *truncatedFile) Write(p []byte) (int, error) {
	if len(p) <= f.limit {
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:f.limit])
	if err := os.Truncate(f.path, 0); err != nil {
		panic(err)
	}
	return n, errDiskFull
}

// TestWriterPartialLineTruncatedUnder: a partial line whose file was
// truncated before the cut-off (copytruncate) is not "cut off" by extending
// the file to where it began, which would fill it with NUL bytes: the next
// line starts the file, with O_APPEND and without.
func TestWriterPartialLineTruncatedUnder(t *testing.T) {
	for _, tc := range []struct {
		name string
		flag int
	}{{"append", os.O_APPEND}, {"no append", os.O_TRUNC}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|tc.flag, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := NewWriter(&truncatedFile{File: f, path: path, limit: 1000}, WriterOptions{})
			w.Emit(&Event{Event: "connection_ended", ConnID: 1})
			w.Emit(&Event{Event: "connection_ended", ConnID: 2, Attrs: map[string]string{"big": strings.Repeat("x", 2000)}})
			w.Emit(&Event{Event: "connection_ended", ConnID: 3})
			closeWriter(t, w)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.IndexByte(data, 0) >= 0 {
				t.Fatalf("NUL bytes in the file (%d bytes): the cut-off extended the truncated file", len(data))
			}
			var ev Event
			if bytes.Count(data, []byte("\n")) != 1 || json.Unmarshal(data, &ev) != nil || ev.ConnID != 3 {
				t.Errorf("file %q, want line 3 alone", data)
			}
			if st := w.Stats(); st.Written != 2 || st.WriteErrors != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
