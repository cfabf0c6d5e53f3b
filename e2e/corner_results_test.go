package e2e

import (
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// Corner cases 1-5 of the protocol brief: result-set framing.

const cornerMaxPacket = 0xffffff // payload of a full physical packet

// cornerRoot is the identity a root connection to dbName reports.
func cornerRoot(dbName string, commands uint64) cornerWant {
	return cornerWant{user: "root", db: dbName, commands: commands}
}

// Case 1: a text row whose first byte is 0xFE (a length prefix of 2^24 or
// more) is a row, not a terminator, because its packet is full-length.
func TestCorner01FELeadingRow(t *testing.T) {
	t.Parallel()
	queries := []string{
		"SELECT REPEAT('a', 16777216)",
		"SELECT REPEAT('a', 16777216) AS big, 1 AS n UNION ALL SELECT REPEAT('b', 16777300), 2",
	}
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, "", nil)
			var out []cornerResult
			for _, q := range queries {
				out = append(out, cornerQuery(c.Conn, q))
			}
			out = append(out, cornerQuery(c.Conn, "SELECT 'after'"))
			c.close()
			tg.expectClean(t, c.id, cornerRoot("", 1+2+1+1)) // id, queries, after, quit
			return out
		})
	})
	for _, deprecateEOF := range []bool{false, true} {
		name := map[bool]string{false: "raw-eof", true: "raw-deprecate-eof"}[deprecateEOF]
		t.Run(name, func(t *testing.T) {
			cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
				c := cornerDial(t, tg.addr, "root", "", "", cornerRawOpts{DeprecateEOF: deprecateEOF})
				var out [][]string
				for _, q := range queries {
					r := c.query(q)
					rows := 0
					for _, p := range r {
						if len(p) >= cornerMaxPacket {
							rows++
							if p[0] != 0xfe {
								t.Errorf("%s: a big row starts with %#x, want 0xfe", q, p[0])
							}
						}
					}
					if rows == 0 {
						t.Errorf("%s: no row of 16 MiB or more in the reply:%s", q, r)
					}
					out = append(out, cornerDigest(r))
				}
				out = append(out, cornerDigest(c.query("SELECT 'after'")))
				c.quit()
				tg.expectClean(t, c.ConnID, cornerRoot("", c.Sent))
				return out
			})
		})
	}
}

// Case 2: logical packets of exactly 0xFFFFFF bytes, which travel as one
// full packet and an empty one, from the server (a text and a binary row)
// and from the client (COM_QUERY of exactly 0xFFFFFF, one byte more, and
// twice 0xFFFFFF).
func TestCorner02ExactMaxPacket(t *testing.T) {
	t.Parallel()
	// A text row of one column of n bytes is lenenc(n) (4 bytes) + n; a
	// binary row is 0x00 + NULL bitmap (1 byte) + lenenc(n) + n.
	const binN = cornerMaxPacket - 6
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, "", nil)
			out := []cornerResult{
				cornerQuery(c.Conn, "SELECT REPEAT('a', 16777211)"),
				cornerQuery(c.Conn, "SELECT REPEAT('b', ?)", binN), // server-side prepared: binary row
			}
			for _, size := range []int{cornerMaxPacket, cornerMaxPacket + 1, 2 * cornerMaxPacket} {
				// COM_QUERY payload = command byte + statement.
				pad := size - 1 - len("SELECT LENGTH('')")
				q := "SELECT LENGTH('" + strings.Repeat("q", pad) + "')"
				r := cornerQuery(c.Conn, q)
				if r.Err != "" || r.Sets[0][0][0] != strconv.Itoa(pad) {
					t.Errorf("a COM_QUERY of %d bytes: %+v, want LENGTH %d", size, r, pad)
				}
				out = append(out, r)
			}
			out = append(out, cornerQuery(c.Conn, "SELECT 'after'"))
			c.close()
			tg.expectClean(t, c.id, cornerRoot("", 1+1+3+3+1+1)) // a query with args is prepare, execute, close
			return out
		})
	})
	t.Run("raw", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerDial(t, tg.addr, "root", "", "", cornerRawOpts{DeprecateEOF: true})
			r := c.query("SELECT REPEAT('a', 16777211)")
			if !cornerHasPacket(r, cornerMaxPacket) {
				t.Errorf("text row: no packet of exactly 0xFFFFFF bytes:%s", r)
			}
			out := [][]string{cornerDigest(r)}
			id, _, _, pr := c.prepare("SELECT REPEAT('b', 16777209)")
			c.send(0x17, cornerExecutePacket(id, 0)...)
			r = c.readReply(nil)
			if !cornerHasPacket(r, cornerMaxPacket) {
				t.Errorf("binary row: no packet of exactly 0xFFFFFF bytes:%s", r)
			}
			out = append(out, cornerDigest(pr), cornerDigest(r), cornerDigest(c.query("SELECT 'after'")))
			c.quit()
			tg.expectClean(t, c.ConnID, cornerRoot("", c.Sent))
			return out
		})
	})
}

func cornerHasPacket(r cornerReply, n int) bool {
	for _, p := range r {
		if len(p) == n {
			return true
		}
	}
	return false
}

// Case 3: a result of more than 256 packets wraps the sequence id to 0
// mid-result; the tracker must not take that 0 for a new command.
func TestCorner03SeqWrap(t *testing.T) {
	t.Parallel()
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, "", nil)
			out := []cornerResult{
				cornerQuery(c.Conn, "SELECT seq FROM mysql.seq_1_to_1000"),
				cornerQuery(c.Conn, "SELECT seq FROM mysql.seq_1_to_1000 WHERE seq > ?", 0), // binary rows
				cornerQuery(c.Conn, "SELECT 'after'"),
			}
			if n := len(out[0].Sets[0]); n != 1000 {
				t.Errorf("got %d rows, want 1000", n)
			}
			c.close()
			tg.expectClean(t, c.id, cornerRoot("", 1+1+3+1+1))
			return out
		})
	})
	t.Run("raw-eof", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerDial(t, tg.addr, "root", "", "mysql", cornerRawOpts{})
			r := c.query("SELECT seq FROM seq_1_to_1000")
			// count, coldef, EOF, 1000 rows, EOF: seq ids 1..1004 mod 256.
			if len(r) != 1004 {
				t.Errorf("reply has %d packets, want 1004", len(r))
			}
			out := [][]string{cornerDigest(r), cornerDigest(c.query("SELECT 'after'"))}
			c.quit()
			tg.expectClean(t, c.ConnID, cornerRoot("mysql", c.Sent))
			return out
		})
	})
}

// Case 4: under CLIENT_DEPRECATE_EOF a result ends with an OK packet headed
// 0xFE that can carry session-state changes, so it is longer than the 9
// bytes an EOF heuristic expects. The schema a USE switches to shows in the
// event, whether the client tracks session state (the raw client: the OK
// names the schema) or not (go-sql-driver 1.10 negotiates DEPRECATE_EOF but
// not CLIENT_SESSION_TRACK, so its OKs carry no session state at all).
func TestCorner04SessionStateTerminator(t *testing.T) {
	t.Parallel()
	cornerSetup(t,
		"CREATE DATABASE IF NOT EXISTS corner_other",
		"CREATE TABLE IF NOT EXISTS corner.trx_t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB",
		"INSERT IGNORE INTO corner.trx_t VALUES (1, 'one'), (2, 'two'), (3, 'three')",
	)
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, cornerDB, nil)
			var out []any
			for _, q := range []string{
				"SET session_track_transaction_info=STATE",
				"SET session_track_state_change=ON",
				"SET session_track_schema=ON",
				"BEGIN",
			} {
				out = append(out, cornerExec(c.Conn, q))
			}
			out = append(out, cornerQuery(c.Conn, "SELECT * FROM trx_t ORDER BY id"),
				cornerQuery(c.Conn, "SELECT * FROM trx_t WHERE id = ?", 2))
			out = append(out, cornerExec(c.Conn, "COMMIT"), cornerExec(c.Conn, "USE corner_other"),
				cornerQuery(c.Conn, "SELECT DATABASE()"))
			c.close()
			// id, SETs and BEGIN, two queries (one prepared), COMMIT, USE,
			// DATABASE(), quit
			tg.expectClean(t, c.id, cornerRoot("corner_other", 1+4+1+3+3+1))
			return out
		})
	})
	t.Run("raw-terminator-length", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{DeprecateEOF: true})
			c.mustOK("SET session_track_transaction_info=STATE")
			c.mustOK("BEGIN")
			r := c.query("SELECT * FROM trx_t ORDER BY id")
			last := r[len(r)-1]
			if last[0] != 0xfe || len(last) < 9 {
				t.Errorf("terminator % x: want 0xFE with session state (9 bytes or more)", last)
			}
			out := [][]string{cornerDigest(r)}
			c.mustOK("COMMIT")
			// A statement the tracker does not read as USE: the schema comes
			// from SESSION_TRACK_SCHEMA in the OK alone.
			c.mustOK("USE /* tracked */ corner_other")
			c.quit()
			tg.expectClean(t, c.ConnID, cornerRoot("corner_other", c.Sent))
			return out
		})
	})
}

// Case 5: multi-results: a CALL of a procedure with two SELECTs (then the
// CALL's own OK), and multi-statements.
func TestCorner05MultiResults(t *testing.T) {
	t.Parallel()
	cornerSetup(t,
		"CREATE OR REPLACE PROCEDURE corner.two_selects() BEGIN SELECT 1 AS a; SELECT 'x' AS b, seq FROM mysql.seq_1_to_3; END",
	)
	multi := []string{
		"SELECT 1; SELECT 2",
		"SELECT 1 AS a; DO 0; SELECT seq FROM mysql.seq_1_to_300",
		"SELECT 1; SELECT * FROM corner.no_such_table; SELECT 3",
		"CALL corner.two_selects(); SELECT 'after call'",
	}
	t.Run("go-sql-driver", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerOpenSQL(t, tg.addr, cornerDB, func(cfg *mysql.Config) { cfg.MultiStatements = true })
			out := []cornerResult{
				cornerQuery(c.Conn, "CALL two_selects()"),
				cornerQuery(c.Conn, "CALL two_selects()"),
			}
			if n := len(out[0].Sets); n != 2 {
				t.Errorf("CALL gave %d result sets, want 2", n)
			}
			for _, q := range multi {
				out = append(out, cornerQuery(c.Conn, q))
			}
			if e := out[4].Err; !strings.HasPrefix(e, "1146 ") {
				t.Errorf("error in a multi-statement: got %q, want 1146", e)
			}
			out = append(out, cornerQuery(c.Conn, "SELECT 'end'"))
			c.close()
			tg.expectClean(t, c.id, cornerRoot(cornerDB, uint64(1+2+len(multi)+1+1)))
			return out
		})
	})
	t.Run("raw-eof", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			c := cornerDial(t, tg.addr, "root", "", cornerDB, cornerRawOpts{MultiStatements: true})
			out := [][]string{cornerDigest(c.query("CALL two_selects()"))}
			// A prepared CALL (CLIENT_PS_MULTI_RESULTS): binary result sets,
			// then the CALL's OK.
			id, _, _, _ := c.prepare("CALL two_selects()")
			c.send(0x17, cornerExecutePacket(id, 0)...)
			r := c.readReply(nil)
			if len(r) != 5+8+1 {
				t.Errorf("prepared CALL: %d packets, want 14 (two results and an OK):%s", len(r), r)
			}
			out = append(out, cornerDigest(r))
			for _, q := range multi {
				out = append(out, cornerDigest(c.query(q)))
			}
			out = append(out, cornerDigest(c.query("SELECT 'end'")))
			c.quit()
			tg.expectClean(t, c.ConnID, cornerRoot(cornerDB, c.Sent))
			return out
		})
	})
}
