package transport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/abortscope/abortscope/events"
)

// timeoutErr is a net.Error that says it timed out and wraps nothing known.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout (custom)" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: err}}
}

func TestCloseKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want events.CloseKind
	}{
		{"nil", nil, events.CloseFIN},
		{"EOF", io.EOF, events.CloseFIN},
		{"wrapped EOF", fmt.Errorf("read client: %w", io.EOF), events.CloseFIN},
		{"unexpected EOF", io.ErrUnexpectedEOF, events.CloseFIN},
		{"wrapped unexpected EOF", fmt.Errorf("relay: %w", io.ErrUnexpectedEOF), events.CloseFIN},
		{"ECONNRESET in OpError+SyscallError", opErr("read", syscall.ECONNRESET), events.CloseRST},
		{"ECONNRESET wrapped again", fmt.Errorf("relay: %w", opErr("read", syscall.ECONNRESET)), events.CloseRST},
		{"bare SyscallError ECONNRESET", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}, events.CloseRST},
		{"EPIPE", opErr("write", syscall.EPIPE), events.CloseRST},
		{"ECONNABORTED", opErr("read", syscall.ECONNABORTED), events.CloseRST},
		{"deadline exceeded", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, events.CloseTimeout},
		{"wrapped deadline", fmt.Errorf("x: %w", os.ErrDeadlineExceeded), events.CloseTimeout},
		{"ETIMEDOUT", opErr("read", syscall.ETIMEDOUT), events.CloseTimeout},
		{"EHOSTUNREACH", opErr("write", syscall.EHOSTUNREACH), events.CloseTimeout},
		{"ENETUNREACH", opErr("write", syscall.ENETUNREACH), events.CloseTimeout},
		{"custom net.Error timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutErr{}}, events.CloseTimeout},
		{"unknown error", errors.New("something else"), events.CloseRST},
		// Text that looks like EOF must not be read as EOF.
		{"EOF only in the text", errors.New("EOF"), events.CloseRST},
		{"reset only in the text", errors.New("read: connection reset by peer: i/o timeout"), events.CloseRST},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassifyOurs(t *testing.T) {
	if f := Classify(nil, &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}); !f.Ours {
		t.Error("net.ErrClosed inside an OpError is not read as our own close")
	}
	if f := Classify(nil, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}); !f.Deadline || f.Ours {
		t.Errorf("a passed deadline is not read as our own wake-up: %+v", f)
	}
	for _, err := range []error{io.EOF, opErr("read", syscall.ECONNRESET), errors.New("use of closed network connection")} {
		if f := Classify(nil, err); f.Ours || f.Deadline {
			t.Errorf("Classify(%v) = %+v, read as ours", err, f)
		}
	}
}
