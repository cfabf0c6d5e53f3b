package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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
//
// Reopen switches the output between two lines (SIGHUP after logrotate):
// the writer's goroutine does it, so no line straddles the two outputs.
type Writer struct {
	out     io.Writer // only the writer's goroutine uses it, once started
	onError func(error)

	// mu makes Close wait for the Emits in progress: Emit queues under the
	// read lock, Close marks the writer closed under the write lock, so no
	// line is queued after the goroutine drained the queue.
	mu     sync.RWMutex
	closed bool
	queue  chan []byte
	reopen chan reopenRequest // unbuffered: taken only between two lines
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
		reopen:  make(chan reopenRequest),
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

// ErrClosed is Reopen's answer once Close has begun.
var ErrClosed = errors.New("events: the writer is closed")

// reopenRequest is a Reopen waiting for the writer's goroutine.
type reopenRequest struct {
	open func(old io.Writer) (io.Writer, error)
	done chan error // buffered: the goroutine never waits for the caller
}

// Reopen has the writer's goroutine call open between two lines, and write
// the lines after it to what open returns: after logrotate renamed the
// events file, open opens its path again. While open runs no line is being
// written, and the cut-off of a partial line before it is done, so a line
// is never split between the two outputs nor cut off in the wrong one.
// open is given the output in use; if it fails, or returns that output,
// the lines go on to it. Lines emitted meanwhile wait in the queue.
//
// If ctx ends before the goroutine is free to take the request (a write is
// stuck), open is not called and the error wraps ctx's; once taken, Reopen
// waits for open. After Close it returns ErrClosed without calling open.
func (w *Writer) Reopen(ctx context.Context, open func(old io.Writer) (io.Writer, error)) error {
	req := reopenRequest{open: open, done: make(chan error, 1)}
	select {
	case w.reopen <- req:
	case <-w.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("events: the writer is busy (a write does not return), not reopened: %w", ctx.Err())
	}
	return <-req.done
}

// doReopen carries out a Reopen on the writer's goroutine. A panic in open
// is the caller's error, not the writer's: the output stays as it was.
func (w *Writer) doReopen(req reopenRequest) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("events: reopening the output panicked: %v", r)
		}
		req.done <- err
	}()
	out, err := req.open(w.out)
	if err == nil && out != nil {
		w.out = out
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
		case req := <-w.reopen:
			w.doReopen(req)
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

// stater tells a file's size, to see whether the partial line is still
// there to be cut off.
type stater interface {
	Stat() (os.FileInfo, error)
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
		if t, ok := w.out.(truncater); ok {
			if cerr := cutPartial(t, int64(n)); cerr != nil {
				err = fmt.Errorf("%w (and the partial line could not be cut off: %v)", err, cerr)
			}
		}
	}
	if w.onError != nil {
		w.onError(err)
	}
}

// cutPartial takes back the n bytes of a line written only in part (a full
// disk), which would tear the file, and puts the write position where the
// next line belongs: a file opened without O_APPEND, as a shell's `> file`
// opens it, would otherwise go on after a gap. This goroutine is the file's
// only writer, so its write position is where the partial line ends.
//
// The file may have been truncated since the write (logrotate copytruncate):
// the partial line then went with it, and truncating to where it began
// would extend the file with NUL bytes instead, so the size is looked at
// first. (A truncation between that look and the cut-off could still
// extend it: it would need a full disk and logrotate in the same
// microseconds.)
func cutPartial(t truncater, n int64) error {
	end, err := t.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil // a pipe: what was written is the reader's already
	}
	start, size := end-n, end
	if s, ok := t.(stater); ok {
		if fi, err := s.Stat(); err == nil {
			size = fi.Size()
		}
	}
	switch {
	case size <= start: // truncated under us: nothing of the line is left
		_, err = t.Seek(size, io.SeekStart)
		return err
	case size > end:
		// Someone else appended after the partial line: cutting it off
		// would take their bytes too.
		return fmt.Errorf("the file grew past the partial line (%d bytes, another writer?)", size-end)
	}
	if err := t.Truncate(start); err != nil {
		return err
	}
	_, err = t.Seek(start, io.SeekStart)
	return err
}
