package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/abortscope/abortscope/events"
)

// eventsFileMode is the mode a new events file gets: events name users,
// client addresses and processes and, with --log-queries, hold statements,
// so only the proxy's own user reads them (a log shipper is given access
// on purpose, by group or ACL).
const eventsFileMode = 0o600

// maxTornTail is how far back from the end of an events file a newline is
// looked for before the file is deemed not an events file at all. An event
// line is a few KiB at most (--log-queries-max bytes of statement, the
// attributes a client may send).
const maxTornTail = 1 << 20

// eventsFile is the file of --events PATH: opened for appending, so every
// line goes at the end whoever else truncated the file (logrotate
// copytruncate), and reopened by its path on SIGHUP, so logrotate may
// rename it away (create).
//
// Each line is one write(2) of the events writer, made as soon as the
// connection's event is queued: the lines of ended connections are in the
// kernel's page cache, and survive a kill -9 of the proxy. They are not
// fsync'ed: a power loss may cost the last seconds of them.
type eventsFile struct {
	path string
	log  *zap.Logger

	// mu guards f: reopen runs on the events writer's goroutine, Close on
	// serve's.
	mu sync.Mutex
	f  *os.File
}

// openEventsFile opens path for serve: it refuses a directory anyone may
// replace the file in, creates the file 0600 if it is missing, and cuts
// off a line a previous run left without its newline.
func openEventsFile(path string, log *zap.Logger) (*eventsFile, error) {
	f, err := openEventsPath(path, log)
	if err != nil {
		return nil, err
	}
	return &eventsFile{path: path, log: log, f: f}, nil
}

// out is what the events writer writes to, first.
func (e *eventsFile) out() io.Writer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.f
}

// Close closes the file open now.
func (e *eventsFile) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.f.Close()
}

// reopenResult says what a reopen found at the path.
type reopenResult struct {
	NewFile bool  // a file other than the one open before: the old one was rotated away
	Size    int64 // the size of the file written to from now on
}

// reopen opens the path again between two lines, on the events writer's
// goroutine (events.Writer.Reopen), so that no line is split between the
// old file and the new one, nor cut off in the wrong one after a short
// write.
//
// If the path names another file than the one open (logrotate create
// renamed it; logrotate or the proxy created the new one), the lines after
// it go to the new file and the old one is closed: every line written to it
// is in it. If the path names the same file (no rotation, or copytruncate,
// which truncates it in place: the O_APPEND writes already go on at its new
// end) nothing changes. If the path cannot be opened, the lines go on to
// the old file and the error says why.
func (e *eventsFile) reopen(ctx context.Context, w *events.Writer) (res reopenResult, err error) {
	err = w.Reopen(ctx, func(old io.Writer) (io.Writer, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		f, err := openEventsPath(e.path, e.log)
		if err != nil {
			return nil, err
		}
		cur, err1 := e.f.Stat()
		next, err2 := f.Stat()
		if err := errors.Join(err1, err2); err != nil {
			f.Close()
			return nil, err
		}
		res.Size = next.Size()
		if os.SameFile(cur, next) {
			f.Close()
			return old, nil
		}
		res.NewFile = true
		e.f.Close()
		e.f = f
		return f, nil
	})
	return res, err
}

// reopenOnHUP reopens the file for SIGHUP and logs what it did.
func (e *eventsFile) reopenOnHUP(w *events.Writer) {
	// Only a write that does not return (a hung network file system) makes
	// the writer's goroutine late to take the request.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := e.reopen(ctx, w)
	switch {
	case err != nil:
		e.log.Error("SIGHUP: the events file was not reopened; events go on to the file open before",
			zap.String("events", e.path), zap.Error(err))
	case res.NewFile:
		e.log.Info("SIGHUP: events file reopened", zap.String("events", e.path), zap.String("file", "new"),
			zap.Int64("size", res.Size), zap.String("meaning", "the file open before was renamed or removed (logrotate create); it was closed with every line written to it whole"))
	default:
		e.log.Info("SIGHUP: events file reopened", zap.String("events", e.path), zap.String("file", "same"),
			zap.Int64("size", res.Size), zap.String("meaning", "the path names the file already open (not rotated, or rotated by copytruncate); lines go on at its end"))
	}
}

// openEventsPath checks path's directories, opens path for appending
// (created 0600), warns if every user may read it, and cuts off a torn last
// line.
func openEventsPath(path string, log *zap.Logger) (*os.File, error) {
	if err := checkEventsDir(path); err != nil {
		return nil, err
	}
	// Read access too, to find a torn last line; a file the proxy may only
	// write to is appended to unchecked. A FIFO or a device is opened
	// write-only, as before: opened for reading as well, a FIFO whose
	// reader went away would fill up instead of failing the writes.
	flag := os.O_RDWR
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		flag = os.O_WRONLY
	}
	f, err := os.OpenFile(path, os.O_CREATE|flag|os.O_APPEND, eventsFileMode)
	readable := err == nil && flag == os.O_RDWR
	if errors.Is(err, fs.ErrPermission) && flag == os.O_RDWR {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, eventsFileMode)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		// A FIFO or a terminal is written to as it is; there is nothing to
		// cut off, and nothing to check the mode of.
		return f, nil
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		log.Warn("the events file is open to every user: events name users, client addresses and processes, and with --log-queries hold statements; chmod o-rwx it",
			zap.String("events", path), zap.String("mode", fmt.Sprintf("%#o", perm)))
	}
	if readable && fi.Size() > 0 {
		cut, err := cutTornTail(f, fi.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if cut > 0 {
			log.Warn("the events file ended with a line cut short (the proxy writing it was killed mid-line, or the host lost power); the torn line was cut off",
				zap.String("events", path), zap.Int64("bytes_cut", cut))
		}
	}
	return f, nil
}

// checkEventsDir refuses a directory that every user may write to and that
// has no sticky bit: anyone could rename the events file away or put a
// link to another file in its place, and read or forge events. (With the
// sticky bit, as /tmp has, only a file's owner may rename or remove it.)
// For a path that is a symbolic link, the directory of the file it points
// to is checked as well.
func checkEventsDir(path string) error {
	dirs := []string{filepath.Dir(path)}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		} else if target, err := os.Readlink(path); err == nil { // a link to a file still to be created
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(path), target)
			}
			dirs = append(dirs, filepath.Dir(target))
		}
	}
	for _, dir := range dirs {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if m := fi.Mode(); m.Perm()&0o002 != 0 && m&fs.ModeSticky == 0 {
			return fmt.Errorf("directory %s is writable by every user and has no sticky bit: anyone could replace the events file; use another directory, or chmod o-w %s (or +t)", dir, dir)
		}
	}
	return nil
}

// cutTornTail cuts off the file's last line if it has no newline: a run of
// the proxy killed while writing a line (the kernel may stop a write to a
// file between two pages for SIGKILL) or a host that lost power. The next
// line would be glued to it, and a JSON reader would lose both. It returns
// how many bytes were cut. A file whose last newline is further back than
// maxTornTail is not an events file, and is refused rather than cut.
func cutTornTail(f *os.File, size int64) (int64, error) {
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return 0, nil
	}
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 && size-end < maxTornTail {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			keep := start + int64(i) + 1
			return size - keep, f.Truncate(keep)
		}
		end = start
	}
	if end > 0 {
		return 0, fmt.Errorf("not an events file: its last %d bytes hold no newline", size-end)
	}
	return size, f.Truncate(0) // the file's only line is torn
}
