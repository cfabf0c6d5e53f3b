package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Corner cases 12 and 15 of the protocol brief: COM_CHANGE_USER, the
// handshake of a compressing client, and the rarer commands once each.

// Case 12: COM_CHANGE_USER to a mysql_native_password user and to an
// ed25519 user (the server switches plugins mid-command). The event names
// the user, schema and attributes of the last successful change; prepared
// statements do not survive it; a refused change leaves the identity as it
// was.
func TestCorner12ChangeUser(t *testing.T) {
	t.Parallel()
	cornerSetup(t,
		"CREATE DATABASE IF NOT EXISTS corner_other",
		"INSTALL PLUGIN IF NOT EXISTS ed25519 SONAME 'auth_ed25519'",
		"CREATE OR REPLACE USER corner_native@'%' IDENTIFIED BY 'pw-native'",
		"CREATE OR REPLACE USER corner_ed@'%' IDENTIFIED VIA ed25519 USING PASSWORD('pw-ed')",
		"GRANT ALL ON corner.* TO corner_native@'%'",
		"GRANT ALL ON corner_other.* TO corner_ed@'%'",
	)
	cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
		c := cornerDial(t, tg.addr, "root", "", "", cornerRawOpts{DeprecateEOF: true})
		id, _, _, _ := c.prepare("SELECT 1")
		var out []any
		who := func() { out = append(out, cornerDigest(c.query("SELECT CURRENT_USER(), DATABASE()"))) }

		if r := c.changeUser("corner_native", "pw-native", cornerDB, "_client_name", "corner-native"); r[0] != 0 {
			t.Fatalf("change user to corner_native: %s", cornerErrText(r))
		}
		who()
		c.send(0x17, cornerExecutePacket(id, 0)...)
		r := c.readReply(nil)
		if cornerErrCode(r[0]) != 1243 {
			t.Errorf("a statement prepared before COM_CHANGE_USER: %s, want ERR 1243", r)
		}
		out = append(out, cornerErrCode(r[0]))

		if r := c.changeUser("corner_ed", "pw-ed", "corner_other", "_client_name", "corner-ed25519"); r[0] != 0 {
			t.Fatalf("change user to corner_ed (ed25519): %s", cornerErrText(r))
		}
		who()

		// A refused change (wrong password) is an ERR; MariaDB keeps the
		// previous identity, and so must the event.
		refused := c.changeUser("corner_native", "wrong", cornerDB, "_client_name", "refused")
		if cornerErrCode(refused) != 1045 {
			t.Errorf("change user with a wrong password: %s, want ERR 1045", cornerErrText(refused))
		}
		out = append(out, cornerErrCode(refused))
		who()
		if last := fmt.Sprint(out[len(out)-1]); !strings.Contains(last, "corner_ed@%") || !strings.Contains(last, "corner_other") {
			t.Errorf("after a refused change the server says %s, want corner_ed@%% in corner_other", last)
		}
		c.quit()
		if ev := tg.expectClean(t, c.ConnID, cornerWant{user: "corner_ed", db: "corner_other", commands: c.Sent}); tg.proxied() {
			if got := ev.Attrs["_client_name"]; got != "corner-ed25519" {
				t.Errorf("event attrs %v: want those of the last COM_CHANGE_USER", ev.Attrs)
			}
		}
		return out
	})
}

// Case 15: a client that asks for compression works through the proxy,
// which strips CLIENT_COMPRESS from the greeting: the session is not
// compressed through the proxy (it is when direct), and ends clean.
func TestCorner15CompressedCLI(t *testing.T) {
	t.Parallel()
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("the mariadb client is needed (make deps installs it): %v", err)
	}
	p := startProxy(t)
	run := func(addr string) []string {
		host, port := hostPort(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, "--no-defaults", "--compress", "--batch", "--skip-column-names",
			"-h", host, "-P", port, "-u", "root",
			"-e", "SELECT 1, 'compressed?'; SHOW SESSION STATUS LIKE 'Compression'; SELECT CONNECTION_ID()").CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb --compress via %s: %v\n%s", addr, err, out)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	direct, proxied := run(db.Addr()), run(p.Addr)
	if len(direct) != 3 || len(proxied) != 3 {
		t.Fatalf("unexpected output: direct %q, proxy %q", direct, proxied)
	}
	if direct[0] != proxied[0] {
		t.Errorf("results differ: direct %q, proxy %q", direct[0], proxied[0])
	}
	if direct[1] != "Compression\tON" || proxied[1] != "Compression\tOFF" {
		t.Errorf("compression: direct %q, proxy %q; want ON direct and OFF through the proxy", direct[1], proxied[1])
	}
	id, err := strconv.ParseUint(proxied[2], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	ev := p.Events.ByServerConn(t, uint32(id))
	cornerCheckEvent(t, ev, map[string]any{
		"verdict": "clean", "phase": "idle", "close": "quit", "desyncs": 0,
		"last_command": "COM_QUIT", "user": "root", "db": "",
	})
	if ev.Attrs["_client_name"] != "libmariadb" {
		t.Errorf("event attrs %v: want the CLI's (_client_name libmariadb)", ev.Attrs)
	}
}

// Case 15, continued: COM_INIT_DB, COM_FIELD_LIST, COM_STATISTICS,
// COM_SET_OPTION (answered with EOF, not OK), COM_PING and
// COM_RESET_CONNECTION, each followed by a query to show the tracker is in
// step, with and without CLIENT_DEPRECATE_EOF.
func TestCorner15RareCommands(t *testing.T) {
	t.Parallel()
	cornerSetup(t,
		"CREATE DATABASE IF NOT EXISTS corner_other",
		"CREATE TABLE IF NOT EXISTS corner.fl_t (a INT, b VARCHAR(10))",
	)
	for _, deprecateEOF := range []bool{false, true} {
		name := map[bool]string{false: "raw-eof", true: "raw-deprecate-eof"}[deprecateEOF]
		t.Run(name, func(t *testing.T) {
			cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
				c := cornerDial(t, tg.addr, "root", "", "", cornerRawOpts{DeprecateEOF: deprecateEOF})
				var out [][]string
				step := func(r cornerReply) {
					out = append(out, cornerDigest(r), cornerDigest(c.query("SELECT 'in step'")))
				}
				c.send(0x02, []byte(cornerDB)...) // COM_INIT_DB
				step(c.readReply(nil))
				c.send(0x04, []byte("fl_t\x00")...) // COM_FIELD_LIST: definitions, then EOF
				f := c.readRows()
				if len(f) != 3 {
					t.Errorf("COM_FIELD_LIST: %d packets, want 2 definitions and EOF:%s", len(f), f)
				}
				step(f)
				c.send(0x09) // COM_STATISTICS: one text packet
				if s := c.read(); !strings.HasPrefix(string(s), "Uptime: ") {
					t.Errorf("COM_STATISTICS: %q", s)
				}
				step(nil)
				for _, opt := range []byte{0, 1} { // MULTI_STATEMENTS_ON, _OFF
					c.send(0x1b, opt, 0) // COM_SET_OPTION: answered with EOF
					r := c.readReply(nil)
					if len(r) != 1 || r[0][0] != 0xfe {
						t.Errorf("COM_SET_OPTION %d: %s, want an EOF", opt, r)
					}
					out = append(out, cornerDigest(r), cornerDigest(c.query("SELECT 1; SELECT 2")))
				}
				c.send(0x0e) // COM_PING
				step(c.readReply(nil))
				c.send(0x02, []byte("corner_other")...)
				step(c.readReply(nil))
				c.send(0x1f) // COM_RESET_CONNECTION
				step(c.readReply(nil))
				r := c.query("SELECT DATABASE()")
				out = append(out, cornerDigest(r))
				c.quit()
				// The schema after COM_RESET_CONNECTION is what MariaDB says.
				dbName := "" // NULL
				if row := r[len(r)-2]; row[0] != 0xfb {
					n, pos := cornerLenenc(row, 0)
					dbName = string(row[pos : pos+int(n)])
				}
				tg.expectClean(t, c.ConnID, cornerRoot(dbName, c.Sent))
				return out
			})
		})
	}
	t.Run("go-mysql", func(t *testing.T) {
		cornerBoth(t, func(t *testing.T, tg cornerTarget) any {
			gm, c := cornerGoMySQL(t, tg.addr, cornerDB)
			fields, err := gm.FieldList("fl_t", "")
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, f := range fields {
				out = append(out, string(f.Name))
			}
			if err := gm.Ping(); err != nil {
				t.Fatal(err)
			}
			if err := gm.UseDB("corner_other"); err != nil {
				t.Fatal(err)
			}
			c.send(0x09)
			if s := c.read(); !strings.HasPrefix(string(s), "Uptime: ") {
				t.Errorf("COM_STATISTICS: %q", s)
			}
			if err := gm.Quit(); err != nil {
				t.Fatal(err)
			}
			tg.expectClean(t, c.ConnID, cornerRoot("corner_other", 5)) // FIELD_LIST, PING, INIT_DB, STATISTICS, QUIT
			return out
		})
	})
}
