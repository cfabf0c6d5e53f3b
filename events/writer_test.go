package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
