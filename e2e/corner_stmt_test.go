package e2e

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
)

// Corner cases 7-10 of the protocol brief: pipelining, commands without a
// reply, MariaDB metadata caching and cursors.

// cornerGoMySQL connects the go-mysql client and wraps its packet conn for
// raw commands. go-mysql sets CLIENT_LONG_PASSWORD (the CLIENT_MYSQL bit), so
// MariaDB reads no extended capabilities from it; it always asks for
// CLIENT_DEPRECATE_EOF.
func cornerGoMySQL(t testing.TB, addr, dbName string) (*client.Conn, *cornerRaw) {
	t.Helper()
	gm, err := client.Connect(addr, "root", "", dbName)
	if err != nil {
		t.Fatalf("go-mysql connect %s: %v", addr, err)
	}
	t.Cleanup(func() { gm.Close() })
	return gm, &cornerRaw{Conn: gm.Conn, t: t, Caps: ccProtocol41 | ccDeprecateEOF, ConnID: gm.GetConnectionID()}
}

// Case 7: pipelining. COM_STMT_PREPARE and COM_STMT_EXECUTE with statement
// id 0xFFFFFFFF ("the statement just prepared") written back to back before
// any reply is read, a failing prepare pipelined the same way, and three
// COM_QUERYs back to back.
func TestCorner07Pipelining(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		gm, c := cornerGoMySQL(t, tg.addr, "mysql")
		var out [][]string

		c.send(0x16, []byte("SELECT seq, seq * 2 FROM seq_1_to_300")...)
		c.send(0x17, cornerExecutePacket(0xffffffff, 0)...)
		c.expectReply()
		_, cols, _, pr := c.readPrepare()
		if cols != 2 {
			t.Errorf("prepare: %d columns, want 2:%s", cols, pr)
		}
		c.expectReply()
		er := c.readReply(nil)
		if len(er) != 1+2+300+1 {
			t.Errorf("execute(-1): %d packets, want 304:%s", len(er), er)
		}
		out = append(out, cornerDigest(pr), cornerDigest(er))

		c.send(0x16, []byte("SELECT * FROM no_such_table")...)
		c.send(0x17, cornerExecutePacket(0xffffffff, 0)...)
		c.expectReply()
		_, _, _, pr = c.readPrepare()
		c.expectReply()
		er = c.readReply(nil)
		if cornerErrCode(pr[0]) != 1146 || cornerErrCode(er[0]) != 1243 {
			t.Errorf("failed prepare + execute(-1): got %s / %s, want 1146 / 1243", cornerErrText(pr[0]), cornerErrText(er[0]))
		}
		out = append(out, cornerDigest(pr), cornerDigest(er))

		queries := []string{"SELECT 1", "SELECT seq FROM seq_1_to_500", "SELECT * FROM no_such_table", "DO 1"}
		for _, q := range queries {
			c.send(0x03, []byte(q)...)
		}
		for range queries {
			c.expectReply()
			out = append(out, cornerDigest(c.readReply(nil)))
		}

		// The connection is still in step: a plain query after the pipeline.
		r, err := gm.Execute("SELECT 'after'")
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.GetString(0, 0)
		out = append(out, []string{s})
		if err := gm.Quit(); err != nil {
			t.Fatal(err)
		}
		c.Sent += 2 // go-mysql's own COM_QUERY and COM_QUIT
		tg.expectClean(t, c.ConnID, cornerRoot("mysql", c.Sent))
		return out
	})
}

// Case 7, continued: a query and COM_QUIT written back to back; the client
// reads the whole reply, then closes. The connection ended at rest.
func TestCorner07PipelinedQuit(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", "mysql", cornerRawOpts{DeprecateEOF: true})
		c.send(0x03, []byte("SELECT seq FROM seq_1_to_2000")...)
		c.send(0x01)
		c.expectReply()
		r := c.readReply(nil)
		if len(r) != 1+1+2000+1 {
			t.Errorf("reply has %d packets, want 2003", len(r))
		}
		c.Conn.Conn.Close()
		tg.expectClean(t, c.ConnID, cornerRoot("mysql", c.Sent))
		return cornerDigest(r)
	})
}

// Case 8: COM_STMT_SEND_LONG_DATA and COM_STMT_CLOSE have no reply; a
// COM_QUERY written right after each must be matched with its own reply.
func TestCorner08NoReplyCommands(t *testing.T) {
	t.Parallel()
	for _, deprecateEOF := range []bool{false, true} {
		name := map[bool]string{false: "raw-eof", true: "raw-deprecate-eof"}[deprecateEOF]
		t.Run(name, func(t *testing.T) {
			cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
				c := cornerDial(t, tg.addr, "root", "", "", cornerRawOpts{DeprecateEOF: deprecateEOF})
				id, _, params, pr := c.prepare("SELECT CONCAT('<', ?, '>')")
				if params != 1 {
					t.Fatalf("prepare: %d params, want 1:%s", params, pr)
				}
				out := [][]string{cornerDigest(pr)}
				for _, chunk := range []string{"long ", "data"} {
					arg := binary.LittleEndian.AppendUint32(nil, id)
					arg = binary.LittleEndian.AppendUint16(arg, 0) // parameter 0
					c.send(0x18, append(arg, chunk...)...)
				}
				c.send(0x03, []byte("SELECT 'between'")...)
				c.expectReply()
				out = append(out, cornerDigest(c.readReply(nil)))

				// Execute with the parameter bound as a string whose value came
				// as long data: NULL bitmap, new-params-bound, type, no value.
				exec := append(cornerExecutePacket(id, 0), 0, 1, 0xfe, 0)
				c.send(0x17, exec...)
				r := c.readReply(nil)
				// A binary row: 0x00, NULL bitmap, then the lenenc string.
				if got := string(r[len(r)-2]); got != "\x00\x00\x0b<long data>" {
					t.Errorf("execute with long data: row %q, want \"<long data>\":%s", got, r)
				}
				out = append(out, cornerDigest(r))

				c.send(0x19, binary.LittleEndian.AppendUint32(nil, id)...)
				c.send(0x03, []byte("SELECT 'after close'")...)
				c.expectReply()
				out = append(out, cornerDigest(c.readReply(nil)))
				c.send(0x17, exec...)
				r = c.readReply(nil)
				if cornerErrCode(r[0]) != 1243 {
					t.Errorf("execute after close: %s, want ERR 1243", r)
				}
				// The message names the statement id, which differs.
				out = append(out, []string{cornerErrText(r[0])[:5]})
				c.quit()
				tg.expectClean(t, c.ConnID, cornerRoot("", c.Sent))
				return out
			})
		})
	}
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, "", nil)
			var out []any
			for i := range 3 {
				st, err := c.PrepareContext(context.Background(), "SELECT ? + 1")
				if err != nil {
					t.Fatal(err)
				}
				var n int
				if err := st.QueryRowContext(context.Background(), i).Scan(&n); err != nil {
					t.Fatal(err)
				}
				st.Close() // COM_STMT_CLOSE, then at once the next command
				out = append(out, n, cornerQuery(c.Conn, "SELECT 'after close'"))
			}
			// The driver sends a parameter of half max_allowed_packet or more
			// as COM_STMT_SEND_LONG_DATA (here one logical packet of 33 MiB),
			// a smaller one inside COM_STMT_EXECUTE (17 MiB: a client
			// command of several physical packets).
			for _, size := range []int{33 << 20, 17 << 20} {
				arg := []byte(strings.Repeat("L", size))
				r := cornerQuery(c.Conn, "SELECT MD5(?)", arg)
				if want := fmt.Sprintf("%x", md5.Sum(arg)); r.Err != "" || r.Sets[0][0][0] != want {
					t.Errorf("MD5 of a %d-byte parameter: %+v, want %s", size, r, want)
				}
				out = append(out, r)
			}
			c.close()
			// id query, 3 x (prepare, execute, close, query), 2 x (prepare,
			// execute, close), long data for the first, quit
			tg.expectClean(t, c.id, cornerRoot("", 1+3*4+2*3+1+1))
			return out
		})
	})
}

// Case 9: with MARIADB_CLIENT_CACHE_METADATA, COM_STMT_EXECUTE gets a
// column count followed by "metadata follows" = 0 and no column definitions
// while the client's copy (from the prepare reply) is current. go-sql-driver
// 1.10 negotiates it; the raw client checks the bytes, with and without
// CLIENT_DEPRECATE_EOF, and makes the server resend the definitions.
func TestCorner09MetadataSkip(t *testing.T) {
	t.Parallel()
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, "", nil)
			st, err := c.PrepareContext(context.Background(), "SELECT seq, CONCAT('v', seq) FROM mysql.seq_1_to_300 WHERE seq <= ?")
			if err != nil {
				t.Fatal(err)
			}
			var out []any
			for _, n := range []int{3, 300, 0, 1} {
				rows, err := st.QueryContext(context.Background(), n)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for rows.Next() {
					var a, b string
					rows.Scan(&a, &b)
					got = append(got, a+b)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				rows.Close()
				if len(got) != n {
					t.Errorf("execute %d: %d rows", n, len(got))
				}
				out = append(out, got)
			}
			st.Close()
			c.close()
			tg.expectClean(t, c.id, cornerRoot("", 1+1+4+1+1)) // id, prepare, executes, close, quit
			return out
		})
	})
	for _, deprecateEOF := range []bool{false, true} {
		name := map[bool]string{false: "raw-eof", true: "raw-deprecate-eof"}[deprecateEOF]
		table := map[bool]string{false: "meta_eof", true: "meta_deprecate_eof"}[deprecateEOF]
		t.Run(name, func(t *testing.T) {
			cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
				c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: deprecateEOF, CacheMetadata: true})
				if !c.has(ccCacheMetadata) {
					t.Fatal("MariaDB did not offer MARIADB_CLIENT_CACHE_METADATA (or it was masked)")
				}
				c.mustOK("CREATE OR REPLACE TABLE " + table + " (a INT)")
				c.mustOK("INSERT INTO " + table + " VALUES (1), (2)")
				id, _, _, pr := c.prepare("SELECT * FROM " + table)
				out := [][]string{cornerDigest(pr)}
				// The prepare reply carried the column definitions, so even
				// the first execute skips them; after the table changes, the
				// server sends them again (metadata follows = 1), then skips
				// them once more.
				for i, want := range []string{"\x01\x00", "\x01\x00", "alter", "\x02\x01", "\x02\x00"} {
					if want == "alter" {
						c.mustOK("ALTER TABLE " + table + " ADD COLUMN b INT DEFAULT 7")
						continue
					}
					c.send(0x17, cornerExecutePacket(id, 0)...)
					r := c.readReply(nil)
					if string(r[0]) != want {
						t.Errorf("execute %d: column count packet %q, want %q:%s", i+1, r[0], want, r)
					}
					// With the definitions skipped, the EOF that would end them
					// still comes without CLIENT_DEPRECATE_EOF; with it, the
					// first row follows the count at once.
					if skipped := want[1] == 0; skipped && !deprecateEOF && (r[1][0] != 0xfe || len(r[1]) != 5) {
						t.Errorf("execute %d: after a count without metadata %q, want an EOF:%s", i+1, r[1], r)
					} else if skipped && deprecateEOF && r[1][0] != 0x00 {
						t.Errorf("execute %d: after a count without metadata %q, want a binary row:%s", i+1, r[1], r)
					}
					out = append(out, cornerDigest(r))
				}
				out = append(out, cornerDigest(c.query("SELECT 'after'")))
				c.quit()
				tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
				return out
			})
		})
	}
}

// Case 10: COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY opens a cursor (the
// reply is metadata only, its terminator has SERVER_STATUS_CURSOR_EXISTS),
// then COM_STMT_FETCH returns rows in batches, the last with
// SERVER_STATUS_LAST_ROW_SENT. One-row and multi-row results, with and
// without CLIENT_DEPRECATE_EOF.
func TestCorner10Cursor(t *testing.T) {
	t.Parallel()
	for _, deprecateEOF := range []bool{false, true} {
		name := map[bool]string{false: "raw-eof", true: "raw-deprecate-eof"}[deprecateEOF]
		t.Run(name, func(t *testing.T) {
			cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
				c := cornerDial(t, tg.addr, "root", "", "mysql", cornerRawOpts{DeprecateEOF: deprecateEOF})
				var out [][]string
				for _, q := range []string{"SELECT seq FROM seq_1_to_10", "SELECT 42", "SELECT seq FROM seq_1_to_0"} {
					id, cols, _, pr := c.prepare(q)
					c.send(0x17, cornerExecutePacket(id, 0x01)...) // CURSOR_TYPE_READ_ONLY
					r := c.readReply(nil)
					out = append(out, cornerDigest(pr), cornerDigest(r))
					// MariaDB 10.11 opens the cursor for one row and for none
					// too; the reply is count, column definitions and one 0xFE
					// terminator (an EOF, or under CLIENT_DEPRECATE_EOF an OK
					// headed 0xFE) with SERVER_STATUS_CURSOR_EXISTS, no rows.
					if c.statusOf(r[len(r)-1])&0x40 == 0 || len(r) != 2+cols {
						t.Errorf("%s: want a cursor and no rows:%s", q, r)
						continue
					}
					for fetches := 0; ; fetches++ {
						if fetches > 10 {
							t.Fatalf("%s: no LAST_ROW_SENT after 10 fetches", q)
						}
						arg := binary.LittleEndian.AppendUint32(nil, id)
						c.send(0x1c, binary.LittleEndian.AppendUint32(arg, 4)...)
						f := c.readRows()
						out = append(out, cornerDigest(f))
						last := f[len(f)-1]
						if last[0] == 0xff {
							t.Fatalf("%s: fetch failed: %s", q, cornerErrText(last))
						}
						if c.statusOf(last)&0x80 != 0 { // SERVER_STATUS_LAST_ROW_SENT
							break
						}
					}
					c.send(0x19, binary.LittleEndian.AppendUint32(nil, id)...)
				}
				out = append(out, cornerDigest(c.query("SELECT 'after'")))
				c.quit()
				tg.expectClean(t, c.ConnID, cornerRoot("mysql", c.Sent))
				return out
			})
		})
	}
}

// COM_STMT_BULK_EXECUTE (MariaDB, with MARIADB_CLIENT_STMT_BULK_OPERATIONS):
// one command carries many rows of parameters; the reply is one OK.
func TestCorner08BulkExecute(t *testing.T) {
	t.Parallel()
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true, BulkOperations: true})
		if !c.has(ccBulkOperations) {
			t.Fatal("MARIADB_CLIENT_STMT_BULK_OPERATIONS was not negotiated")
		}
		c.mustOK("CREATE OR REPLACE TABLE bulk_t (a INT, b VARCHAR(20))")
		id, _, params, _ := c.prepare("INSERT INTO bulk_t VALUES (?, ?)")
		if params != 2 {
			t.Fatalf("prepare: %d params, want 2", params)
		}
		// stmt id, flags SEND_TYPES_TO_SERVER, types LONG and VAR_STRING,
		// then per row and parameter an indicator (0 value, 1 NULL) and the
		// value.
		p := binary.LittleEndian.AppendUint32(nil, id)
		p = binary.LittleEndian.AppendUint16(p, 128)
		p = append(p, 0x03, 0, 0xfd, 0)
		for i := range 500 {
			p = append(p, 0)
			p = binary.LittleEndian.AppendUint32(p, uint32(i))
			if i%7 == 0 {
				p = append(p, 1)
				continue
			}
			v := fmt.Sprintf("row %d", i)
			p = append(append(p, 0, byte(len(v))), v...)
		}
		c.send(0xfa, p...)
		r := c.readReply(nil)
		if len(r) != 1 || r[0][0] != 0 || r[0][1] != 0xfc || binary.LittleEndian.Uint16(r[0][2:]) != 500 {
			t.Errorf("bulk execute: %s, want OK with 500 affected rows", r)
		}
		out := [][]string{cornerDigest(r),
			cornerDigest(c.query("SELECT COUNT(*), COUNT(b), SUM(a) FROM bulk_t"))}
		c.quit()
		tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
		return out
	})
}
