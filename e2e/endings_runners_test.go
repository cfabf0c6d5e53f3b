package e2e

// Real clients other than go-mysql: go-sql-driver through database/sql, the
// mariadb command-line client and PyMySQL, each driven the way an
// application or a user would end it.

import (
	"bufio"
	"context"
	"database/sql"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/abortscope/abortscope/internal/e2ekit"
)

// goSQL opens a database/sql pool with go-sql-driver that holds at most one
// connection, so that every statement runs on the same server connection.
func goSQL(t testing.TB, addr, user, pass string, edit ...func(*mysql.Config)) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, pass
	cfg.Net, cfg.Addr = "tcp", addr
	cfg.DBName = "mysql"
	cfg.Timeout = 5 * time.Second
	cfg.ConnectionAttributes = "program_name:abortscope-e2e"
	cfg.Logger = &mysql.NopLogger{} // the driver reports expected breakage on stderr otherwise
	for _, f := range edit {
		f(cfg)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := sql.OpenDB(conn)
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(1)
	pool.SetConnMaxLifetime(0)
	return pool
}

// cliPath is the mariadb command-line client.
func cliPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("the mariadb client is required (make deps installs it): %v", err)
	}
	return p
}

// mariadbCLI returns the mariadb client for addr in batch mode, flushing
// after each statement (-n), so a test can read CONNECTION_ID() from the
// first line while the next statement runs.
func mariadbCLI(t testing.TB, ctx context.Context, addr, user, pass string, args ...string) *exec.Cmd {
	t.Helper()
	host, port := hostPort(t, addr)
	a := []string{"--no-defaults", "--protocol=TCP", "--host=" + host, "--port=" + port,
		"--user=" + user, "--password=" + pass, "--database=mysql", "--skip-ssl",
		"--batch", "--skip-column-names", "--unbuffered"}
	return exec.CommandContext(ctx, cliPath(t), append(a, args...)...)
}

// startedCLI is a running mariadb client whose first output line was
// SELECT CONNECTION_ID().
type startedCLI struct {
	cmd *exec.Cmd
	out *bufio.Reader
	id  uint32
}

// startCLI runs `SELECT CONNECTION_ID(); <then>` in the mariadb client and
// returns once the id is printed, while then is already sent or running.
func startCLI(t testing.TB, ctx context.Context, addr, user, pass string, extra []string, then string) *startedCLI {
	t.Helper()
	cmd := mariadbCLI(t, ctx, addr, user, pass, append(extra, "-e", "SELECT CONNECTION_ID(); "+then)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	out := bufio.NewReaderSize(stdout, 4096)
	line, err := out.ReadString('\n')
	id, perr := strconv.ParseUint(strings.TrimSpace(line), 10, 32)
	if err != nil || perr != nil {
		t.Fatalf("mariadb client: first line %q (%v, %v); stderr: %s", line, err, perr, stderr.String())
	}
	return &startedCLI{cmd: cmd, out: out, id: uint32(id)}
}

// kill9 SIGKILLs the client, as the kernel would end a crashed program:
// its socket is closed with whatever it had not read yet.
func (c *startedCLI) kill9(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
}

// kill9When is kill9 once ok holds for the bytes unread in the client's
// socket: the kernel closes a killed program's socket with RST when unread
// bytes sit in it, with FIN when none do.
func (c *startedCLI) kill9When(t testing.TB, ok func(unread int) bool) {
	t.Helper()
	e2ekit.KillWhenUnread(t, c.cmd, ok)
}

// pyEndings is a PyMySQL client that prints its connection id, then ends
// the way argv[5] says.
const pyEndings = `
import array, fcntl, os, sys, termios, time
import pymysql, pymysql.cursors
host, port, user, pw, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
conn = pymysql.connect(host=host, port=port, user=user, password=pw, database="mysql",
                       program_name="abortscope-e2e")
print(conn.thread_id(), flush=True)
if mode == "quit":
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    conn.close()  # COM_QUIT, then close
elif mode == "no_quit":
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
    sys.exit(0)  # the interpreter closes the socket; no COM_QUIT
elif mode == "exit_mid_fetch":
    cur = conn.cursor(pymysql.cursors.SSCursor)  # unbuffered: rows stay on the wire
    cur.execute(sys.argv[6])
    rows = cur.fetchmany(100)
    print(len(rows), flush=True)
    # Wait for the rows behind to reach the socket (FIONREAD is SIOCINQ).
    unread = array.array('i', [0])
    deadline = time.monotonic() + 15
    while unread[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
        fcntl.ioctl(conn._sock.fileno(), termios.FIONREAD, unread)
    if unread[0] == 0:
        raise SystemExit("no unread bytes in the socket after 15 s")
    os._exit(0)  # no close, no COM_QUIT, unread data: the kernel resets
else:
    raise SystemExit("unknown mode " + mode)
`

// pyMySQL runs pyEndings with Debian's python3 (which has python3-pymysql;
// a python3 earlier on $PATH may not) and returns the connection id it
// printed and the rest of its output.
func pyMySQL(t testing.TB, addr, user, pass, mode string) (uint32, string) {
	t.Helper()
	host, port := hostPort(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", "-c", pyEndings, host, port, user, pass, mode, bigQuery)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start /usr/bin/python3 (make deps installs python3-pymysql): %v", err)
	}
	out, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("PyMySQL %s: %v\nstdout: %s\nstderr: %s", mode, err, out, stderr.String())
	}
	first, rest, _ := strings.Cut(string(out), "\n")
	id, err := strconv.ParseUint(strings.TrimSpace(first), 10, 32)
	if err != nil {
		t.Fatalf("PyMySQL %s: first line %q is not a connection id; stderr: %s", mode, first, stderr.String())
	}
	return uint32(id), rest
}
