package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/abortscope/abortscope/events"
)

// MaxLine is the longest line read from an events file or an error log; a
// longer one is counted as bad and skipped. With serve --log-queries an
// event holds up to --log-queries-max bytes of statement text, so lines of
// a few KiB are common and lines of MiBs possible.
const MaxLine = 16 << 20

// eachLine calls fn with each line of r (without its line ending) and its
// number, counting from 1, reading r as a stream. A line longer than limit is
// not given to fn; long is called with its number instead. fn must not
// keep line.
func eachLine(r io.Reader, limit int, fn func(no int, line []byte), long func(no int)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		acc  []byte // a line longer than br's buffer, so far
		over bool   // the line so far is longer than limit
		no   int
	)
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !over && len(acc)+len(frag) <= limit {
				acc = append(acc, frag...)
			} else {
				over, acc = true, acc[:0]
			}
			continue
		}
		if len(frag) > 0 || len(acc) > 0 || over {
			no++
			line := frag
			if len(acc) > 0 && !over {
				acc = append(acc, frag...)
				line = acc
			}
			if over || len(line) > limit+2 { // +2: the line ending
				long(no)
			} else {
				fn(no, bytes.TrimRight(line, "\r\n"))
			}
			acc, over = acc[:0], false
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ReadStats tells how reading an events file went.
type ReadStats struct {
	Lines  int // lines that are not blank
	Events int
	// Bad counts lines that are not events: not JSON, not a
	// connection_ended object, or longer than MaxLine. FirstBad describes
	// the first of them.
	Bad      int
	FirstBad string
}

func (s *ReadStats) bad(no int, why string) {
	s.Bad++
	if s.FirstBad == "" {
		s.FirstBad = fmt.Sprintf("line %d: %s", no, why)
	}
}

// Add adds the counts of o (another file) to s.
func (s *ReadStats) Add(o ReadStats) {
	s.Lines += o.Lines
	s.Events += o.Events
	s.Bad += o.Bad
	if s.FirstBad == "" {
		s.FirstBad = o.FirstBad
	}
}

// ReadEvents reads an events file (one JSON event per line, as serve
// writes it) as a stream and calls fn with each event. Lines that are not
// events are counted in the stats and skipped: a file that is being
// appended to may end in half a line. The error is a read error of r.
func ReadEvents(r io.Reader, fn func(*events.Event)) (ReadStats, error) {
	var st ReadStats
	err := eachLine(r, MaxLine, func(no int, line []byte) {
		if len(bytes.TrimSpace(line)) == 0 {
			return
		}
		st.Lines++
		var e events.Event
		if err := json.Unmarshal(line, &e); err != nil {
			st.bad(no, err.Error())
			return
		}
		if e.Event != "connection_ended" {
			st.bad(no, fmt.Sprintf("event %q, want connection_ended", e.Event))
			return
		}
		st.Events++
		fn(&e)
	}, func(no int) {
		st.Lines++
		st.bad(no, fmt.Sprintf("longer than %d bytes", MaxLine))
	})
	return st, err
}
