package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Corner cases 6, 11 and 13 of the protocol brief: LOCAL INFILE, progress
// packets, and COM_QUIT while a result is unread.

// cornerInfileData is a tab-separated file of n rows of about 60 bytes.
func cornerInfileData(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d\trow %d %s\n", i, i, strings.Repeat("z", 40))
	}
	return b.Bytes()
}

// Case 6: LOAD DATA LOCAL INFILE through go-sql-driver: a reader of several
// MB and a registered file (both in 16 KB packets, so the upload wraps the
// sequence id), and a refusal (a file the driver may not read: it answers
// the server's request with the empty packet at once).
func TestCorner06LocalInfile(t *testing.T) {
	t.Parallel()
	data := cornerInfileData(100000) // 6.6 MB: over 400 packets of 16 KB
	file := filepath.Join(t.TempDir(), "corner_infile.tsv")
	if err := os.WriteFile(file, cornerInfileData(20000), 0o600); err != nil {
		t.Fatal(err)
	}
	mysql.RegisterLocalFile(file)
	defer mysql.DeregisterLocalFile(file)
	const reader = "corner_infile"
	mysql.RegisterReaderHandler(reader, func() io.Reader { return bytes.NewReader(data) })
	defer mysql.DeregisterReaderHandler(reader)
	refused := filepath.Join(t.TempDir(), "not_registered.tsv")
	os.WriteFile(refused, []byte("1\tx\n"), 0o600)

	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerOpenSQL(t, tg.addr, cornerDB, nil)
		var out []any
		out = append(out, cornerExec(c.Conn, "CREATE OR REPLACE TABLE infile_t (id INT, v VARCHAR(100)) ENGINE=MyISAM"))
		for _, src := range []string{"Reader::" + reader, file, refused} {
			res, err := c.ExecContext(context.Background(),
				"LOAD DATA LOCAL INFILE '"+src+"' INTO TABLE infile_t")
			var n int64
			if err == nil {
				n, _ = res.RowsAffected()
			}
			out = append(out, n, cornerErr(err))
		}
		if e := out[len(out)-1].(string); !strings.Contains(e, "is not registered") {
			t.Errorf("refused file: error %q, want the driver's refusal", e)
		}
		sum := cornerQuery(c.Conn, "SELECT COUNT(*), SUM(id), SUM(CRC32(v)) FROM infile_t")
		if got := sum.Sets[0][0][0]; got != "120000" {
			t.Errorf("loaded %s rows, want 120000", got)
		}
		out = append(out, sum)
		c.close()
		// id, CREATE, three LOAD DATA, SELECT, quit
		tg.expectClean(t, c.id, cornerRoot(cornerDB, 1+1+3+1+1))
		return out
	})
}

// Case 6, continued: the client resets the connection mid-upload. The
// proxy's event shows the phase "infile", and MariaDB logs the same for the
// proxied connection as for a direct one.
func TestCorner06InfileResetMidUpload(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true})
		c.mustOK("CREATE OR REPLACE TABLE infile_rst_" + tg.name + " (id INT, v VARCHAR(100)) ENGINE=MyISAM")
		c.send(0x03, []byte("LOAD DATA LOCAL INFILE 'upload.tsv' INTO TABLE infile_rst_"+tg.name)...)
		if r := c.read(); r[0] != 0xfb || string(r[1:]) != "upload.tsv" {
			t.Fatalf("want a LOCAL INFILE request, got % x", r)
		}
		data := cornerInfileData(20000)
		for i := 0; i < 300; i++ { // 300 packets: the sequence id wraps
			c.write(append(make([]byte, 4), data[i*1000:(i+1)*1000]...))
		}
		off := db.LogOffset()
		nc := c.Conn.Conn.(*net.TCPConn)
		nc.SetLinger(0)
		nc.Close()
		logged := cornerLoggedAbort(cornerServerLog(t, c.ConnID, off))
		if logged != 1158 {
			t.Errorf("MariaDB logged %d for the connection, want 1158 (reading the file failed)", logged)
		}
		if tg.proxied() {
			ev := tg.p.Events.ByServerConn(t, c.ConnID)
			cornerCheckEvent(t, ev, map[string]any{
				"verdict":               "client_abort_in_flight",
				"phase":                 "infile",
				"close":                 "rst",
				"desyncs":               0,
				"last_command":          "COM_QUERY",
				"expected_server_error": logged,
			})
		}
		return logged
	})
}

// Case 2 and 6 together: a LOCAL INFILE upload whose file data is one
// logical packet of exactly 0xFFFFFF bytes (a full packet and an empty one),
// then the empty packet that ends the upload.
func TestCorner06InfileExactMaxPacket(t *testing.T) {
	t.Parallel()
	line := "1\t" + strings.Repeat("m", 60) + "\n"
	data := []byte(strings.Repeat(line, cornerMaxPacket/len(line)-1))
	data = append(data, "2\t"+strings.Repeat("n", cornerMaxPacket-len(data)-3)+"\n"...)
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true})
		c.mustOK("CREATE OR REPLACE TABLE infile_max_t (id INT, v VARCHAR(100)) ENGINE=MyISAM")
		c.send(0x03, []byte("LOAD DATA LOCAL INFILE 'max.tsv' INTO TABLE infile_max_t")...)
		if r := c.read(); r[0] != 0xfb {
			t.Fatalf("want a LOCAL INFILE request, got % x", r)
		}
		c.write(append(make([]byte, 4), data...)) // go-mysql adds the empty packet
		c.write(make([]byte, 4))
		r := c.readReply(nil)
		if len(r) != 1 || r[0][0] != 0 {
			t.Fatalf("upload: %s, want OK", r)
		}
		sum := c.query("SELECT COUNT(*), SUM(LENGTH(v)) FROM infile_max_t")
		if want := fmt.Sprintf("%d", cornerMaxPacket/len(line)); !strings.HasPrefix(string(sum[len(sum)-2][1:]), want) {
			t.Errorf("loaded %q, want %s rows", sum[len(sum)-2], want)
		}
		out := [][]string{cornerDigest(r), cornerDigest(sum)}
		c.quit()
		tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
		return out
	})
}

// Case 5 and 6 together: LOCAL INFILE as the middle statement of a
// multi-statement query: a result with SERVER_MORE_RESULTS_EXISTS, the
// 0xFB request, the upload, an OK with SERVER_MORE_RESULTS_EXISTS, a result.
// The client asks for MARIADB_CLIENT_PROGRESS, so LOAD DATA may report
// progress too.
func TestCorner06InfileInMultiStatement(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true, MultiStatements: true, Progress: true})
		c.mustOK("CREATE OR REPLACE TABLE infile_multi_t (id INT, v VARCHAR(100)) ENGINE=MyISAM")
		c.send(0x03, []byte("SELECT 1; LOAD DATA LOCAL INFILE 'multi.tsv' INTO TABLE infile_multi_t; SELECT COUNT(*) FROM infile_multi_t")...)
		var first cornerReply
		for { // count, definition, row, terminator with MORE_RESULTS
			p := c.read()
			first = append(first, p)
			if p[0] == 0xfe {
				break
			}
		}
		if c.statusOf(first[len(first)-1])&0x08 == 0 {
			t.Fatalf("first result: no SERVER_MORE_RESULTS_EXISTS:%s", first)
		}
		if r := c.read(); r[0] != 0xfb || string(r[1:]) != "multi.tsv" {
			t.Fatalf("want a LOCAL INFILE request, got % x", r)
		}
		data := cornerInfileData(30000)
		for off := 0; off < len(data); off += 16 << 10 {
			c.write(append(make([]byte, 4), data[off:min(off+16<<10, len(data))]...))
		}
		c.write(make([]byte, 4))
		var progress int
		rest := c.readReply(&progress)
		if len(rest) != 1+4 || rest[0][0] != 0 {
			t.Errorf("after the upload: want OK then one result:%s", rest)
		}
		out := [][]string{cornerDigest(first), cornerDigest(rest), cornerDigest(c.query("SELECT 'after'"))}
		c.quit()
		tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
		return out
	})
}

// Case 11: MariaDB progress packets (0xFF, code 0xFFFF) arrive in the
// middle of a reply to a client that asked for MARIADB_CLIENT_PROGRESS; they
// are not the reply's end. An ALTER TABLE ... ALGORITHM=COPY of 100k rows
// reports progress with progress_report_time=1.
func TestCorner11Progress(t *testing.T) {
	t.Parallel()
	cornerSetup(t,
		"CREATE OR REPLACE TABLE corner.progress_t (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
		"INSERT INTO corner.progress_t SELECT seq, REPEAT('p', 60) FROM mysql.seq_1_to_100000",
	)
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true, Progress: true})
		if !c.has(ccMariaDBProgress) {
			t.Fatal("MARIADB_CLIENT_PROGRESS was not negotiated")
		}
		c.mustOK("SET SESSION progress_report_time = 1")
		// The first report goes out at the first progress step (MariaDB
		// starts with no report due), later ones every second, so there is
		// at least one however fast the copy is.
		var progress int
		q := "ALTER TABLE progress_t FORCE, ALGORITHM=COPY"
		c.send(0x03, []byte(q)...)
		r := c.readReply(&progress)
		if len(r) != 1 || r[0][0] != 0 {
			t.Fatalf("%s: want OK, got %s", q, r)
		}
		if progress == 0 {
			t.Errorf("%s: no progress packet", q)
		}
		t.Logf("%s: %d progress packets", tg.name, progress)
		out := [][]string{cornerDigest(r)}
		out = append(out, cornerDigest(c.query("SELECT COUNT(*), SUM(id) FROM progress_t")))
		c.quit()
		tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
		return out
	})
}

// Case 13: COM_QUIT sent while a large result is still unread, then close
// (what libmysql's mysql_close after mysql_use_result does). MariaDB is busy
// writing the result and never reads the COM_QUIT; the close with unread
// data resets the connection. What MariaDB logs must be the same with and
// without the proxy, and the event must predict it.
func TestCorner13QuitMidResult(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", "mysql", cornerRawOpts{DeprecateEOF: true})
		c.send(0x03, []byte("SELECT seq, REPEAT('x', 1000) FROM seq_1_to_1000000")...)
		for range 100 { // column count, definitions, some rows
			c.read()
		}
		off := db.LogOffset()
		c.quit()
		logged := cornerLoggedAbort(cornerServerLog(t, c.ConnID, off))
		if logged != 1160 {
			t.Errorf("MariaDB logged %d for the connection, want 1160", logged)
		}
		if tg.proxied() {
			// Not asserted: close and last_command. The proxy's write of
			// the result to the client can fail on the reset before its
			// other relay has read the COM_QUIT that came just before it.
			ev := tg.p.Events.ByServerConn(t, c.ConnID)
			cornerCheckEvent(t, ev, map[string]any{
				"verdict":               "client_abort_in_flight",
				"phase":                 "result",
				"desyncs":               0,
				"expected_server_error": logged,
			})
		}
		return logged
	})
}
