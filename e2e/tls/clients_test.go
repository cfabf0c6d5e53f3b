package tlse2e

// The three clients, with TLS and certificate verification on, each able to
// end a connection three ways: clean (COM_QUIT), without COM_QUIT while
// idle, and killed in the middle of a large result.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/internal/e2ekit"
)

// bigQuery streams about 1 GB, far more than any socket buffer.
const bigQuery = "SELECT seq, REPEAT('x', 1000) FROM seq_1_to_1000000"

// Endings.
const (
	quit      = "quit"
	noQuit    = "no_quit"
	midResult = "mid_result"
	readAll   = "read_all" // go-sql-driver only: read the large result until it ends or fails
)

// tlsVersions the clients are run with: what they negotiate by default
// (1.3 with MariaDB 10.11 and OpenSSL 3), and 1.2 forced.
var tlsVersions = []string{"1.3", "1.2"}

// A client ends one connection to addr as ending says, with TLS version
// tv, and returns its server connection id.
type client func(t *testing.T, addr, user, pass, tv, ending string) uint32

var clients = map[string]client{"cli": cliClient, "go-sql-driver": goSQLClient, "pymysql": pyClient}

// --- go-sql-driver ---

var dialSeq atomic.Int64

// goSQLClient uses database/sql with a TLS config that verifies the
// server against the test CA and its name. A dialer of its own keeps the
// TCP socket, for the endings a library never does by itself.
func goSQLClient(t *testing.T, addr, user, pass, tv, ending string) uint32 {
	t.Helper()
	roots := x509.NewCertPool()
	pem, err := os.ReadFile(pki.ca.File)
	if err != nil || !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("CA: %v", err)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	if tv == "1.2" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	name := fmt.Sprintf("tlse2e%d", dialSeq.Add(1))
	if err := mysql.RegisterTLSConfig(name, cfg); err != nil {
		t.Fatal(err)
	}
	var raw *net.TCPConn
	mysql.RegisterDialContext(name, func(ctx context.Context, a string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
		if err == nil {
			raw = c.(*net.TCPConn)
		}
		return c, err
	})
	dsn := fmt.Sprintf("%s:%s@%s(%s)/mysql?tls=%s&interpolateParams=true", user, pass, name, addr, name)
	pool, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pool.Conn(ctx)
	if err != nil {
		t.Fatalf("go-sql-driver TLS %s to %s: %v", tv, addr, err)
	}
	var id uint32
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	switch ending {
	case quit:
		conn.Close()
		pool.Close() // COM_QUIT
	case noQuit:
		raw.Close() // FIN, no COM_QUIT, no close_notify
		conn.Raw(func(any) error { return nil })
	case midResult:
		rows, err := conn.QueryContext(ctx, bigQuery)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50 && rows.Next(); i++ {
		}
		if err := waitUnreadConn(raw); err != nil {
			t.Fatal(err)
		}
		raw.Close() // unread data: the kernel resets
	case readAll:
		rows, err := conn.QueryContext(ctx, bigQuery)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
		}
	}
	return id
}

// --- PyMySQL ---

const pyTLS = `
import array, fcntl, os, ssl, sys, termios, time
import pymysql, pymysql.cursors
host, port, user, pw, mode, query, ca, tv = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
ctx = ssl.create_default_context(cafile=ca)  # verifies the certificate and the name
if tv == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
conn = pymysql.connect(host=host, port=port, user=user, password=pw, database="mysql",
                       program_name="abortscope-e2e-tls", ssl=ctx)
print(conn.thread_id(), flush=True)
def unread():
    buf = array.array('i', [0])
    fcntl.ioctl(conn._sock.fileno(), termios.FIONREAD, buf)
    return buf[0]
if mode == "quit":
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    conn.close()
elif mode == "no_quit":
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    os._exit(0)  # no COM_QUIT, no close_notify
elif mode == "mid_result":
    cur = conn.cursor(pymysql.cursors.SSCursor)
    cur.execute(query)
    cur.fetchmany(50)
    deadline = time.time() + 15
    while unread() == 0 and time.time() < deadline:
        time.sleep(0.001)
    os._exit(0 if unread() > 0 else 3)  # unread data: the kernel resets
else:
    raise SystemExit("unknown mode " + mode)
`

func pyClient(t *testing.T, addr, user, pass, tv, ending string) uint32 {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pyTLS, host, port, user, pass, ending, bigQuery, pki.ca.File, tv)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("PyMySQL TLS %s %s: %v\n%s", tv, ending, err, stderr.String())
	}
	id, err := strconv.ParseUint(strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]), 10, 32)
	if err != nil {
		t.Fatalf("PyMySQL: %q: %v; stderr %s", out, err, stderr.String())
	}
	return uint32(id)
}

// --- the mariadb CLI ---

func cliArgs(addr, user, pass, tv string) []string {
	host, port, _ := net.SplitHostPort(addr)
	a := []string{"--no-defaults", "--protocol=TCP", "--host=" + host, "--port=" + port,
		"--user=" + user, "--password=" + pass, "--database=mysql",
		"--ssl", "--ssl-ca=" + pki.ca.File, "--ssl-verify-server-cert",
		"--batch", "--skip-column-names", "--unbuffered"}
	if tv == "1.2" {
		a = append(a, "--tls-version=TLSv1.2")
	}
	return a
}

func cliClient(t *testing.T, addr, user, pass, tv, ending string) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := cliArgs(addr, user, pass, tv)
	switch ending {
	case quit:
		args = append(args, "-e", "SELECT CONNECTION_ID(); SELECT 1")
	case midResult:
		args = append(args, "--quick", "-e", "SELECT CONNECTION_ID(); "+bigQuery)
	}
	cmd := exec.CommandContext(ctx, "mariadb", args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	r := bufio.NewReader(stdout)
	if ending == noQuit {
		io.WriteString(stdin, "SELECT CONNECTION_ID();\n")
	}
	line, err := r.ReadString('\n')
	id, perr := strconv.ParseUint(strings.TrimSpace(line), 10, 32)
	if err != nil || perr != nil {
		t.Fatalf("mariadb CLI TLS %s: first line %q (%v); stderr: %s", tv, line, err, stderr.String())
	}
	switch ending {
	case quit:
		io.Copy(io.Discard, r)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("mariadb CLI: %v; stderr %s", err, stderr.String())
		}
	case noQuit:
		killWhen(t, cmd, func(n int) bool { return n == 0 }) // idle: nothing unread, the kernel sends FIN
	case midResult:
		if _, err := io.CopyN(io.Discard, r, 256<<10); err != nil {
			t.Fatal(err)
		}
		killWhen(t, cmd, func(n int) bool { return n > 0 }) // unread data: the kernel resets
	}
	return uint32(id)
}

// killWhen SIGKILLs cmd once ok holds for the bytes unread in its TCP
// socket (from /proc/net/tcp).
func killWhen(t *testing.T, cmd *exec.Cmd, ok func(int) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := e2ekit.UnreadOfProcess(cmd.Process.Pid)
		if err == nil && ok(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client's socket never reached the state to kill it in (unread %d, %v)", n, err)
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// waitUnreadConn waits until bytes sit unread in c (SIOCINQ through
// /proc), so that closing it sends RST.
func waitUnreadConn(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		rc.Control(func(fd uintptr) { n, _ = e2ekit.Pending(fd) })
		if n > 0 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("no unread bytes in the client's socket after 15 s")
}
