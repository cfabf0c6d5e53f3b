package mariadbtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// logPollInterval is how often WaitForLog rereads the error log. mariadbd
// flushes each message as it writes it, so polling sees it promptly.
const logPollInterval = 20 * time.Millisecond

// ErrorLog returns the whole error log.
func (s *Server) ErrorLog() (string, error) {
	b, err := os.ReadFile(s.ErrLogPath)
	if err != nil {
		return "", fmt.Errorf("mariadbtest: read error log: %w", err)
	}
	return string(b), nil
}

// LogOffset returns the current size of the error log. Take it before an
// action and pass it to ErrorLogSince or WaitForLog to see only what the
// action caused. A log that does not exist yet, or cannot be examined, has
// offset 0, which errs towards showing more, never less.
func (s *Server) LogOffset() int64 {
	fi, err := os.Stat(s.ErrLogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ErrorLogSince returns the part of the error log written at or after
// offset.
func (s *Server) ErrorLogSince(offset int64) (string, error) {
	f, err := os.Open(s.ErrLogPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("mariadbtest: open error log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "", fmt.Errorf("mariadbtest: seek error log to %d: %w", offset, err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("mariadbtest: read error log: %w", err)
	}
	return string(b), nil
}

// WaitForLog polls the error log every 20 ms until text appears after
// sinceOffset, or ctx ends. Lines are logged after the event that causes
// them (for example after the server notices a closed socket), so tests
// wait for them instead of reading the log once.
func (s *Server) WaitForLog(ctx context.Context, text string, sinceOffset int64) error {
	tick := time.NewTicker(logPollInterval)
	defer tick.Stop()
	for {
		got, err := s.ErrorLogSince(sinceOffset)
		if err != nil {
			return err
		}
		if strings.Contains(got, text) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mariadbtest: %q not in error log after offset %d: %w\n--- log since offset ---\n%s",
				text, sinceOffset, ctx.Err(), tail([]byte(got), 40))
		case <-tick.C:
		}
	}
}

// logTail returns the end of the error log, or of mariadbd's stdout/stderr
// if the error log is empty (mariadbd writes there when it fails before
// opening --log-error), for error messages.
func (s *Server) logTail() string {
	if b, err := os.ReadFile(s.ErrLogPath); err == nil && len(b) > 0 {
		return tail(b, 40)
	}
	b, err := os.ReadFile(filepath.Join(s.DataDir, "mariadbd.out"))
	if err != nil {
		return fmt.Sprintf("(no error log: %v)", err)
	}
	return tail(b, 40)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			i = 0
			break
		}
	}
	return string(bytes.TrimLeft(b[i:], "\n"))
}
