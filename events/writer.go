package events

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Writer writes events as JSON lines from a goroutine of its own, so that a
// slow reader of the events (a blocked `--events -` pipe, a slow disk)
// never holds up a connection's teardown.
//
// Emit marshals the event and queues the line; when the queue is full the
// line is dropped and counted (Stats().Dropped), never waited for. Each line
// is written whole with one Write call. A failed write is counted, reported
// to OnError, and the next line is tried as if nothing happened: one error
// does not silence the lines after it. After a short write to a file, the
// partial line is cut off again so the file holds whole lines only.
type Writer struct {
	out     io.Writer
	onError func(error)

	// mu makes Close wait for the Emits in progress: Emit queues under the
	// read lock, Close marks the writer closed under the write lock, so no
	// line is queued after the goroutine drained the queue.
	mu     sync.RWMutex
	closed bool
	queue  chan []byte
	stop   chan struct{}
	done   chan struct{}

	written, dropped, writeErrors atomic.Uint64
}

// WriterOptions tunes a Writer. The zero value is usable.
type WriterOptions struct {
	// Queue is how many lines may wait to be written. If zero, 4096.
	Queue int
	// OnError is told of each failed write (from the writer's goroutine).
	// If nil, errors are only counted.
	OnError func(error)
}

// WriterStats counts what a Writer did with the events it was given.
type WriterStats struct {
	Written     uint64 // lines written whole
	Dropped     uint64 // lines not written: the queue was full, or the writer closed
	WriteErrors uint64 // failed writes (each loses its line)
}

// NewWriter returns a Writer writing to out and starts its goroutine; Close
// stops it.
func NewWriter(out io.Writer, o WriterOptions) *Writer {
	n := o.Queue
	if n <= 0 {
		n = 4096
	}
	w := &Writer{
		out:     out,
		onError: o.OnError,
		queue:   make(chan []byte, n),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.run()
	return w
}

// Line returns e as one JSON line, newline included.
func Line(e *Event) []byte {
	line, err := json.Marshal(e)
	if err != nil { // only unsupported types fail; Event has none
		line = fmt.Appendf(nil, `{"event":"connection_ended","conn_id":%d,"error":%q}`, e.ConnID, err.Error())
	}
	return append(line, '\n')
}

// Emit queues e as one line. It never blocks on the output.
func (w *Writer) Emit(e *Event) {
	line := Line(e)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- line:
	default:
		w.dropped.Add(1)
	}
}

// Stats returns the counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Written: w.written.Load(), Dropped: w.dropped.Load(), WriteErrors: w.writeErrors.Load()}
}

// Close writes the lines still queued and stops the goroutine. If ctx ends
// first (the output is stuck), Close returns an error saying how many lines
// were still queued; the goroutine goes on writing them should the output
// come back. Close is safe to call more than once.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("events: %d lines not written before the deadline: %w", len(w.queue), ctx.Err())
	}
}

// run is the writer goroutine: it writes queued lines until Close, then the
// rest of the queue. A panic in the output or in OnError loses the line at
// hand, not the process nor the lines after it.
func (w *Writer) run() {
	defer close(w.done)
	for !w.drain() {
	}
}

// drain writes lines until Close (true), or until a panic (false).
func (w *Writer) drain() (closed bool) {
	defer func() {
		if r := recover(); r != nil {
			w.writeErrors.Add(1)
			closed = false
		}
	}()
	for {
		select {
		case line := <-w.queue:
			w.write(line)
		case <-w.stop:
			for {
				select {
				case line := <-w.queue:
					w.write(line)
				default:
					return true
				}
			}
		}
	}
}

// truncater is the part of *os.File that lets a short write be taken back.
type truncater interface {
	Seek(offset int64, whence int) (int64, error)
	Truncate(size int64) error
}

func (w *Writer) write(line []byte) {
	n, err := w.out.Write(line)
	if err == nil && n == len(line) {
		w.written.Add(1)
		return
	}
	if err == nil {
		err = io.ErrShortWrite
	}
	w.writeErrors.Add(1)
	if n > 0 {
		// A partial line (disk full) would tear the file: cut it off, and
		// write the next line where it began (a file opened without
		// O_APPEND, as a shell's `> file` opens it, would otherwise go on
		// after a gap). This goroutine is the file's only writer, so the
		// write position is where the partial line ends.
		if t, ok := w.out.(truncater); ok {
			if end, serr := t.Seek(0, io.SeekCurrent); serr == nil {
				start := end - int64(n)
				if terr := t.Truncate(start); terr != nil {
					err = fmt.Errorf("%w (and the partial line could not be cut off: %v)", err, terr)
				} else {
					t.Seek(start, io.SeekStart)
				}
			}
		}
	}
	if w.onError != nil {
		w.onError(err)
	}
}
