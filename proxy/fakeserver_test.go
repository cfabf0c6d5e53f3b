package proxy

// A scripted fake MariaDB 10.11 for the proxy tests. It keeps the server's
// side of the protocol contract that the tests rely on: a HandshakeV10
// greeting with MariaDB's extended capabilities in the last filler bytes,
// OK (or ERR 1045) after the handshake response, text result sets shaped by
// the negotiated CLIENT_DEPRECATE_EOF and MARIADB_CLIENT_CACHE_METADATA,
// sequence ids that restart at each command and wrap, and no reply to
// COM_QUIT, only a close. Each session reports what its socket saw (every
// byte read and, if asked, written; the error that ended reading or writing)
// on a channel, never by failing the test from its own goroutine.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abortscope/abortscope/internal/wiretest"
	"github.com/abortscope/abortscope/protocol"
)

const (
	fakeVersion  = wiretest.Version
	fakeCaps     = wiretest.ServerCaps
	greetCapLow  = wiretest.GreetCapLow
	greetCapHigh = wiretest.GreetCapHigh
	greetExtCaps = wiretest.GreetExtCaps
)

// fakeGreeting builds a MariaDB 10.11 HandshakeV10 payload.
func fakeGreeting(connID uint32) []byte { return wiretest.Greeting(connID, fakeCaps) }

// fakeSession is one upstream connection. Its fields belong to the
// session's goroutine until it reports; the test reads them after that.
type fakeSession struct {
	ID   uint32
	conn *net.TCPConn
	r    *bufio.Reader
	seq  byte
	caps uint64 // negotiated

	Greeting  []byte // the greeting packet as sent, header included
	Handshake []byte // the handshake response packet as received
	User, DB  string
	Received  bytes.Buffer // every byte read from the socket
	Sent      bytes.Buffer // every byte written (only with fakeServer.record)
	Queries   []string
	GotQuit   bool
	ReadErr   error // what ended reading (io.EOF for a FIN); nil after COM_QUIT
	WriteErr  error // the first failed write
	// ResultWritten and ResultTotal are the bytes of the last streamed
	// result written and meant to be written.
	ResultWritten, ResultTotal int64
	// Ended is when the session left its loop.
	Ended time.Time

	record bool
}

// fakeServer is a scripted fake MariaDB listening on loopback.
type fakeServer struct {
	ln     net.Listener
	nextID atomic.Uint32
	wg     sync.WaitGroup

	// record keeps every byte written in Session.Sent.
	record bool
	// authFail answers every handshake response with ERR 1045.
	authFail bool
	// garbage, when set and returning bytes for a session, has the session
	// write them instead of a greeting, then read until the peer goes.
	garbage func(id uint32) []byte
	// onQuery, when set, may answer a COM_QUERY itself: it returns
	// handled=false to fall back to the default script.
	onQuery func(s *fakeSession, q string) (handled bool, err error)
	// greetGate, when set, holds every greeting until it is closed.
	greetGate chan struct{}
	// loginGate, when set, holds every answer to a handshake response
	// until it is closed.
	loginGate chan struct{}

	mu   sync.Mutex
	live map[uint32]*net.TCPConn
	// closing is closed when Close starts; scripts that wait select on it.
	closing chan struct{}

	// Sessions reports each session once, when it ends. Started reports each
	// session id once the handshake is done.
	Sessions chan *fakeSession
	Started  chan uint32
}

// newFakeServer starts a fake MariaDB; configure it with opts before it
// accepts (they run before the accept loop starts). It stops at cleanup.
func newFakeServer(t testing.TB, opts ...func(*fakeServer)) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln, live: map[uint32]*net.TCPConn{}, closing: make(chan struct{}),
		Sessions: make(chan *fakeSession, 1024), Started: make(chan uint32, 1024)}
	f.nextID.Store(100)
	for _, o := range opts {
		o(f)
	}
	f.wg.Add(1)
	go f.acceptLoop()
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) Addr() string { return f.ln.Addr().String() }

// Close stops accepting, closes every live session and waits for them.
func (f *fakeServer) Close() {
	select {
	case <-f.closing:
	default:
		close(f.closing)
	}
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.live {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// Kill ends session id from the server's side, as KILL does (FIN), or as
// wait_timeout does (RST, SO_LINGER 0). It reports whether it was live.
func (f *fakeServer) Kill(id uint32, rst bool) bool {
	f.mu.Lock()
	c := f.live[id]
	f.mu.Unlock()
	if c == nil {
		return false
	}
	if rst {
		c.SetLinger(0)
	}
	c.Close()
	return true
}

func (f *fakeServer) acceptLoop() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s := &fakeSession{ID: f.nextID.Add(1), conn: c.(*net.TCPConn), record: f.record}
		s.r = bufio.NewReaderSize(io.TeeReader(c, &s.Received), 64<<10)
		f.mu.Lock()
		f.live[s.ID] = s.conn
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.run(s)
			s.Ended = time.Now()
			f.mu.Lock()
			delete(f.live, s.ID)
			f.mu.Unlock()
			s.conn.Close()
			f.Sessions <- s
		}()
	}
}

// next waits for the next session to end.
func (f *fakeServer) next(t testing.TB) *fakeSession {
	t.Helper()
	select {
	case s := <-f.Sessions:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no upstream session ended within 15 s")
		return nil
	}
}

func (s *fakeSession) write(b []byte) error {
	if s.WriteErr != nil {
		return s.WriteErr
	}
	if _, err := s.conn.Write(b); err != nil {
		s.WriteErr = err
		return err
	}
	if s.record {
		s.Sent.Write(b)
	}
	return nil
}

// packet appends the next packet of the exchange to b.
func (s *fakeSession) packet(b, payload []byte) []byte {
	b = protocol.AppendPacket(b, s.seq, payload)
	s.seq++
	return b
}

func (s *fakeSession) readPacket() (seq byte, payload []byte, err error) {
	var h [4]byte
	if _, err := io.ReadFull(s.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	payload = make([]byte, n)
	if _, err := io.ReadFull(s.r, payload); err != nil {
		return 0, nil, err
	}
	return h[3], payload, nil
}

func (f *fakeServer) run(s *fakeSession) {
	if g := f.garbageFor(s.ID); g != nil {
		if s.write(g) != nil {
			return
		}
		_, s.ReadErr = io.Copy(io.Discard, s.r)
		return
	}
	if f.greetGate != nil {
		select {
		case <-f.greetGate:
		case <-f.closing:
			return
		}
	}
	s.Greeting = s.packet(nil, fakeGreeting(s.ID))
	if s.write(s.Greeting) != nil {
		return
	}
	seq, resp, err := s.readPacket()
	if err != nil {
		s.ReadErr = err
		return
	}
	s.Handshake = protocol.AppendPacket(nil, seq, resp)
	s.seq = seq + 1
	r, ok := protocol.ParseHandshakeResponse(resp)
	if !ok || r.SSLRequest {
		// MariaDB answers a handshake it cannot read with ER_HANDSHAKE_ERROR.
		s.write(s.packet(nil, protocol.AppendERR(nil, 1043, "08S01", "Bad handshake")))
		return
	}
	s.caps, s.User, s.DB = r.Caps&fakeCaps, r.User, r.DB
	if f.loginGate != nil {
		select {
		case <-f.loginGate:
		case <-f.closing:
			return
		}
	}
	if f.authFail {
		msg := fmt.Sprintf("Access denied for user '%s'@'localhost' (using password: YES)", r.User)
		s.write(s.packet(nil, protocol.AppendERR(nil, 1045, "28000", msg)))
		return
	}
	if s.write(s.packet(nil, okPayload(0x00))) != nil {
		return
	}
	f.Started <- s.ID
	for {
		_, cmd, err := s.readPacket()
		if err != nil {
			s.ReadErr = err
			return
		}
		s.seq = 1
		if len(cmd) == 0 {
			s.write(s.packet(nil, protocol.AppendERR(nil, 1047, "08S01", "Unknown command")))
			continue
		}
		switch cmd[0] {
		case protocol.ComQuit:
			s.GotQuit = true
			return
		case protocol.ComPing, protocol.ComInitDB:
			err = s.write(s.packet(nil, okPayload(0x00)))
		case protocol.ComQuery:
			q := string(cmd[1:])
			s.Queries = append(s.Queries, q)
			handled := false
			if f.onQuery != nil {
				handled, err = f.onQuery(s, q)
			}
			if !handled {
				err = s.answer(q)
			}
		default:
			err = s.write(s.packet(nil, protocol.AppendERR(nil, 1047, "08S01", "Unknown command")))
		}
		if err != nil { // a failed write, or the script ended the session
			return
		}
	}
}

func (f *fakeServer) garbageFor(id uint32) []byte {
	if f.garbage == nil {
		return nil
	}
	return f.garbage(id)
}
