// Package redact masks the literals of SQL statements, so that statement
// text can be logged without the data in it.
package redact

import "strings"

// Literals returns q with every literal replaced by ?: strings in single
// or double quotes (backslash escapes and doubled quotes; with a character
// set introducer, _utf8mb4'…' keeps the introducer), numbers (1, -1 keeps
// its minus, 1.5, .5, 1e-3), hexadecimal and bit literals (0x1F, X'1F',
// b'101', 0b101) and national strings (N'…'). Identifiers (t1, `x 2`, 1t),
// comments, keywords and placeholders stay as they are. The SQL inside an
// executable comment (/*! … */, /*M! … */) is SQL that runs, and is masked
// like the rest.
//
// An unterminated literal (a statement cut by --log-queries-max) is masked
// to the end. Double quotes are read as MariaDB's default reads them:
// strings, not ANSI_QUOTES identifiers. Literals never panics, and its
// result is never longer than q.
func Literals(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			b.WriteByte('?')
			i = endQuoted(q, i)
		case c == '`':
			j := endQuoted(q, i)
			b.WriteString(q[i:j])
			i = j
		case c == '#' || c == '-' && strings.HasPrefix(q[i:], "--") && (i+2 == len(q) || q[i+2] <= ' '):
			j := endLine(q, i)
			b.WriteString(q[i:j])
			i = j
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			j := endComment(q, i)
			b.WriteString(q[i:j])
			i = j
		case isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1]) && !qualifies(q, i):
			j, number := endNumber(q, i)
			if number {
				b.WriteByte('?')
			} else {
				b.WriteString(q[i:j])
			}
			i = j
		case isIdent(c):
			j := i + 1
			for j < len(q) && isIdent(q[j]) {
				j++
			}
			if j == i+1 && j < len(q) && q[j] == '\'' && strings.IndexByte("xXbBnN", c) >= 0 {
				b.WriteByte('?') // X'1F', b'101', N'text': the prefix is part of the literal
				i = endQuoted(q, j)
				continue
			}
			b.WriteString(q[i:j])
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

// endQuoted returns the position after the quoted text that starts at i
// (', " or `), or len(q) if it never ends. A quote is escaped by doubling
// it; in strings (not identifiers), a backslash escapes the next byte.
func endQuoted(q string, i int) int {
	quote := q[i]
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			if j+1 < len(q) && q[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(q)
}

// endLine returns the position after the comment that runs to the end of
// the line (# or "-- "), newline included.
func endLine(q string, i int) int {
	if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
		return i + n + 1
	}
	return len(q)
}

// endComment returns the position after the /* */ comment at i. An
// executable comment (/*!50700 … */, /*M!100100 … */) ends after its
// opening and version instead: what follows is SQL, and its */ is copied
// as the two characters it is.
func endComment(q string, i int) int {
	j := i + 2
	if j < len(q) && q[j] == '!' {
		j++
	} else if strings.HasPrefix(q[j:], "M!") {
		j += 2
	} else {
		if n := strings.Index(q[j:], "*/"); n >= 0 {
			return j + n + 2
		}
		return len(q)
	}
	for j < len(q) && isDigit(q[j]) {
		j++
	}
	return j
}

// endNumber returns the end of the token that starts with a digit (or a
// dot and a digit) at i, and whether it is a number rather than an
// identifier such as 1t or 123abc.
func endNumber(q string, i int) (int, bool) {
	j := i
	if q[i] == '0' && i+2 < len(q) && (q[i+1] == 'x' || q[i+1] == 'b') {
		k := i + 2
		for k < len(q) && (q[i+1] == 'x' && isHex(q[k]) || q[i+1] == 'b' && (q[k] == '0' || q[k] == '1')) {
			k++
		}
		if k > i+2 && (k == len(q) || !isIdent(q[k])) {
			return k, true // 0x1F, 0b101
		}
	}
	for j < len(q) && isDigit(q[j]) {
		j++
	}
	decimal := false
	if j < len(q) && q[j] == '.' {
		decimal = true
		j++
		for j < len(q) && isDigit(q[j]) {
			j++
		}
	}
	if j < len(q) && (q[j] == 'e' || q[j] == 'E') {
		k := j + 1
		if k < len(q) && (q[k] == '+' || q[k] == '-') {
			k++
		}
		if k < len(q) && isDigit(q[k]) {
			for k < len(q) && isDigit(q[k]) {
				k++
			}
			return k, true
		}
	}
	if !decimal && j < len(q) && isIdent(q[j]) {
		// 1t, 2fa_codes: MariaDB reads digits followed by letters as an
		// identifier.
		for j < len(q) && isIdent(q[j]) {
			j++
		}
		return j, false
	}
	return j, true
}

// qualifies reports whether the dot at i joins two names (t.5col, `t`.1):
// after a name, what follows is a name too, not a number.
func qualifies(q string, i int) bool {
	return i > 0 && (isIdent(q[i-1]) || q[i-1] == '`')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// isIdent reports whether c may appear in an unquoted identifier: letters,
// digits, _ and $, and every byte of a multi-byte UTF-8 character.
func isIdent(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_' || c == '$' || c >= 0x80
}
