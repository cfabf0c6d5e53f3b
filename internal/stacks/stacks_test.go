package stacks

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// TestWait: a goroutine blocked reading a socket is found by the function
// it reads in, and only BlockedIn it once the read waits in the poller.
func TestWait(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go readOnce(c)
	Wait(t, 10*time.Second, "in readOnce", In("stacks.readOnce"))
	Wait(t, 10*time.Second, "reading in readOnce", BlockedIn("stacks.readOnce"))

	ft := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Wait(ft, 10*time.Millisecond, "in a function nobody runs", In("stacks.noSuchFunction"))
	}()
	<-done
	if !ft.failed {
		t.Error("Wait did not fail for a function no goroutine runs")
	}
}

func readOnce(c net.Conn) { c.Read(make([]byte, 1)) }

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}
