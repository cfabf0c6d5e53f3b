package proxyproto

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap/zaptest"

	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/proxy"
)

// collector is an EventSink that keeps events for assertions.
type collector struct {
	mu     sync.Mutex
	events []events.Event
}

func (c *collector) Emit(e *events.Event) {
	c.mu.Lock()
	c.events = append(c.events, *e)
	c.mu.Unlock()
}

// wait returns the first event match accepts, waiting up to 15 s.
func (c *collector) wait(t *testing.T, what string, match func(events.Event) bool) events.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c.mu.Lock()
		all := append([]events.Event(nil), c.events...)
		c.mu.Unlock()
		for _, e := range all {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event for %s after 15 s; events: %+v", what, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startProxy starts an abortscope proxy in front of the package's MariaDB,
// shut down when the test ends.
func startProxy(t *testing.T, configure func(*proxy.Proxy)) (addr string, sink *collector) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink = &collector{}
	p := &proxy.Proxy{Upstream: db.Addr(), Logger: zaptest.NewLogger(t), Events: sink}
	configure(p)
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), sink
}

// needLocalIP fails the test, saying why, unless a socket can be bound to
// ip: a client the tests tell from the proxy (127.0.0.1) by its address
// comes from 127.0.0.2, which a machine whose loopback interface holds only
// 127.0.0.1/32 lacks. Without this a refused login would look like the
// proxy refusing it.
func needLocalIP(t *testing.T, ip string) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("this test needs a client address of %s on the loopback interface (Linux routes 127.0.0.0/8 to lo unless lo was given only 127.0.0.1/32): %v", ip, err)
	}
	ln.Close()
}

// client is one go-sql-driver connection whose socket the test holds, to
// end it without COM_QUIT.
type client struct {
	db   *sql.DB
	conn *sql.Conn
	raw  net.Conn
}

// connect logs user in at addr over a socket bound to localIP; if header is
// set, the socket sends it first, as a load balancer would.
func connect(t *testing.T, addr, localIP, user, header string) (*client, error) {
	t.Helper()
	needLocalIP(t, localIP)
	c := &client{}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = user, "pw", "tcp", addr
	cfg.Timeout = 5 * time.Second
	cfg.Logger = &mysql.NopLogger{} // the test closes sockets under the driver
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if header != "" {
			if _, err := nc.Write([]byte(header)); err != nil {
				nc.Close()
				return nil, err
			}
		}
		c.raw = nc
		return nc, nil
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.db = sql.OpenDB(conn)
	t.Cleanup(func() { c.db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.conn, err = c.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// serverID is the connection's id on MariaDB.
func (c *client) serverID(t *testing.T) int64 {
	t.Helper()
	var id int64
	if err := c.conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// abort ends the connection with a FIN and no COM_QUIT, as a client that
// skips mysql_close() does.
func (c *client) abort() { c.raw.Close() }

func (c *client) localAddr() string { return c.raw.LocalAddr().String() }

// processListHost is the Host column of SHOW PROCESSLIST for connection id.
func processListHost(t *testing.T, id int64) string {
	t.Helper()
	rows, err := db.DB().Query("SHOW PROCESSLIST")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		if cols[0] == "Id" && cols[2] == "Host" && vals[0].String == strconv.FormatInt(id, 10) {
			return vals[2].String
		}
	}
	t.Fatalf("connection %d not in SHOW PROCESSLIST (columns %v)", id, cols)
	return ""
}

// waitLog waits for text in MariaDB's error log after offset.
func waitLog(t *testing.T, text string, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := db.WaitForLog(ctx, text, offset); err != nil {
		t.Fatal(err)
	}
	log, _ := db.ErrorLogSince(offset)
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, text) {
			t.Logf("MariaDB: %s", line)
		}
	}
}

var userSeq struct {
	mu sync.Mutex
	n  int
}

// newUser creates a fresh user (password "pw") so log lines name the test.
func newUser(t *testing.T, prefix string) string {
	t.Helper()
	userSeq.mu.Lock()
	userSeq.n++
	name := fmt.Sprintf("%s_%d", prefix, userSeq.n)
	userSeq.mu.Unlock()
	if err := db.CreateUser(context.Background(), name, "pw"); err != nil {
		t.Fatal(err)
	}
	return name
}
