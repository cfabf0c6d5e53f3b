package redact

import (
	"strings"
	"testing"
)

func TestLiterals(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"SELECT 1", "SELECT ?"},
		{"SELECT * FROM t1 WHERE id = 42 AND name = 'bob'", "SELECT * FROM t1 WHERE id = ? AND name = ?"},
		{`INSERT INTO users VALUES ("alice", 'o''brien', 'it\'s', -3.5, 1e10, 2.5E-3, .5)`,
			`INSERT INTO users VALUES (?, ?, ?, -?, ?, ?, ?)`},
		{`SELECT 'a\\' , 'b'`, `SELECT ? , ?`}, // an escaped backslash ends nothing
		{`SELECT "say ""hi"""`, `SELECT ?`},
		// Identifiers keep their digits.
		{"SELECT t1.c2, `x2`, `we``ird 3`, db9.t$4 FROM 1t JOIN 2fa_codes", "SELECT t1.c2, `x2`, `we``ird 3`, db9.t$4 FROM 1t JOIN 2fa_codes"},
		{"SELECT `it's`, `a\\` FROM t", "SELECT `it's`, `a\\` FROM t"},
		{"SELECT t.5col, `t`.1x FROM t", "SELECT t.5col, `t`.1x FROM t"},
		{"SELECT 1.5abc", "SELECT ?abc"}, // 1.5 AS abc
		{"SELECT café, naïve2 FROM t", "SELECT café, naïve2 FROM t"},
		// Hexadecimal, bit and national literals, introducers.
		{"SELECT 0x1F, X'1f', x'', b'101', 0b101, B'1', N'name', n'x'", "SELECT ?, ?, ?, ?, ?, ?, ?, ?"},
		{"SELECT 0xZZ, 0b102, 0X1F", "SELECT 0xZZ, 0b102, 0X1F"}, // identifiers to MariaDB
		{"SELECT _utf8mb4'secret', _binary 'x' COLLATE utf8mb4_bin", "SELECT _utf8mb4?, _binary ? COLLATE utf8mb4_bin"},
		{"SELECT a'x'", "SELECT a?"},
		// Comments stay; the SQL in an executable comment is SQL.
		{"SELECT 1 -- the answer is 42\n, 2", "SELECT ? -- the answer is 42\n, ?"},
		{"SELECT 1 # 42 'x'\n", "SELECT ? # 42 'x'\n"},
		{"SELECT /* 42 'x' */ 1", "SELECT /* 42 'x' */ ?"},
		{"SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1", "SELECT /*+ MAX_EXECUTION_TIME(1000) */ ?"},
		{"/*!40101 SET NAMES 'utf8' */; /*M!100100 SET @x = 5 */", "/*!40101 SET NAMES ? */; /*M!100100 SET @x = ? */"},
		{"SELECT 5--3", "SELECT ?--?"}, // -- without a space is two minuses
		{"SELECT 1--", "SELECT ?--"},
		{"SELECT 1 /* never closed 42", "SELECT ? /* never closed 42"},
		// Placeholders, variables, operators, keywords.
		{"SELECT ? FROM t WHERE a = ? LIMIT 10, 5", "SELECT ? FROM t WHERE a = ? LIMIT ?, ?"},
		{"SET @x = 1, @@session.wait_timeout = 28800", "SET @x = ?, @@session.wait_timeout = ?"},
		{"SELECT TRUE, NULL, a+1, a-1, a*2/3%4", "SELECT TRUE, NULL, a+?, a-?, a*?/?%?"},
		{"SELECT 'a' 'b' \"c\"", "SELECT ? ? ?"},
		{"SELECT 1.", "SELECT ?"},
		{"SELECT 1e", "SELECT 1e"},
		{"SELECT 1e+", "SELECT 1e+"},
		// Cut by --log-queries-max: the rest is masked.
		{"INSERT INTO t VALUES ('top secr", "INSERT INTO t VALUES (?"},
		{`SELECT "abc\`, `SELECT ?`},
		{"SELECT `unterminated 1", "SELECT `unterminated 1"},
		{"SELECT X'ab", "SELECT ?"},
		{"'", "?"},
		{"\\", "\\"},
	} {
		if got := Literals(tc.in); got != tc.want {
			t.Errorf("Literals(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// neutral removes what could leave the scanner inside a string, an
// identifier or a comment, so that a literal appended after it is a literal.
func neutral(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune("'\"`#-/", r) {
			return -1
		}
		return r
	}, s)
}

// quote writes secret as a string literal in quote, escaped one way or the
// other.
func quote(secret string, q byte, backslash bool) string {
	var b strings.Builder
	b.WriteByte(q)
	for i := 0; i < len(secret); i++ {
		c := secret[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == q && backslash:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == q:
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// FuzzLiterals: never panics, never grows the statement, and the text of a
// quoted literal never shows: the result is the same whatever the literal
// holds.
func FuzzLiterals(f *testing.F) {
	f.Add("SELECT * FROM t WHERE a = ", "top secret", " AND b = 2", false, false)
	f.Add("INSERT INTO t VALUES (x", "O'Brien \\ \"", ")", true, true)
	f.Add("SELECT 1e", "'", "", true, false)
	f.Add("/*!40101 SET NAMES ", "utf8", " */", false, false)
	f.Fuzz(func(t *testing.T, before, secret, after string, double, backslash bool) {
		for _, q := range []string{before, secret, after, before + secret + after} {
			if out := Literals(q); len(out) > len(q) {
				t.Fatalf("Literals(%q) = %q: longer", q, out)
			}
		}
		before, after = neutral(before), neutral(after)
		qc := byte('\'')
		if double {
			qc = '"'
		}
		withSecret := Literals(before + quote(secret, qc, backslash) + after)
		withNothing := Literals(before + quote("", qc, backslash) + after)
		// Equal results: nothing of the secret can show.
		if withSecret != withNothing {
			t.Fatalf("the literal's content shows:\n%q\n%q", withSecret, withNothing)
		}
	})
}

func BenchmarkLiterals(b *testing.B) {
	q := "SELECT c.id, c.name FROM customers c WHERE c.email = 'someone@example.com' AND c.created_at > '2024-01-01' AND c.score BETWEEN 10 AND 99.5 LIMIT 50"
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		Literals(q)
	}
}
