package proxy

import (
	"net"
	"sync"

	"go.uber.org/zap"
)

// ProcessResolver finds the local process behind a client connection (a
// loopback client, through /proc). It is called once per connection, in a
// goroutine of its own at accept, so a process that is killed later is
// still named in its connection's event. hint returns the pid the client
// declared in its _pid connection attribute, 0 until its handshake response
// has arrived; a resolver may poll it while it searches, and must check it
// (the attribute is the client's word, and names a pid in the client's pid
// namespace).
type ProcessResolver func(client net.Conn, hint func() int) (pid int, cmd string, ok bool)

// resolveProcess runs the resolver for c, if any.
func (c *conn) resolveProcess() {
	if c.p.ResolveProcess == nil {
		close(c.procDone)
		return
	}
	log := c.log // serve may replace c.log after a PROXY header
	go func() {
		defer close(c.procDone)
		defer func() {
			if r := recover(); r != nil {
				log.Error("process lookup panicked", zap.Any("panic", r), zap.Stack("stack"))
			}
		}()
		if pid, cmd, ok := c.p.ResolveProcess(c.client, c.pidHint); ok {
			c.procMu.Lock()
			c.pid, c.cmd = pid, cmd
			c.procMu.Unlock()
		}
	}()
}

// pidHint is the client's _pid connection attribute, or 0.
func (c *conn) pidHint() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess.Pid()
}

// process returns what the resolver found so far.
func (c *conn) process() (int, string) {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	return c.pid, c.cmd
}

// procState is the part of conn the resolver fills in.
type procState struct {
	procMu   sync.Mutex
	pid      int
	cmd      string
	procDone chan struct{} // closed when the resolver finished
}
