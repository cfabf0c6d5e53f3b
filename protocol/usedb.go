package protocol

// A `USE db` statement sent as COM_QUERY changes the default schema, and the
// server tells only clients that negotiated CLIENT_SESSION_TRACK (in the OK's
// session-state block). go-sql-driver/mysql, for one, does not negotiate it,
// so without reading the statement the tracker would keep the old schema
// while MariaDB logs the new one ("Aborted connection N to db: 'new'").

// useCapture is how many statement bytes the tracker copies to recognise a
// USE statement: the keyword, a schema name of up to 64 characters of up to
// 4 bytes each, quoted with every backtick doubled, and some white space.
const useCapture = 600

// ParseUse recognises a statement that is exactly `USE name` or
// "USE `name`" (any case, surrounding white space and one trailing
// semicolon allowed) and returns the schema name. Anything else, including
// comments and several statements, is not recognised: the tracker then keeps
// the schema it knows, as it would have without this.
func ParseUse(q []byte) (string, bool) {
	pos := skipSpace(q, 0)
	if pos+3 > len(q) || !isKeywordUse(q[pos:pos+3]) {
		return "", false
	}
	pos += 3
	next := skipSpace(q, pos)
	if next == pos || next >= len(q) {
		return "", false
	}
	pos = next
	var name []byte
	if q[pos] == '`' {
		for pos++; ; pos++ {
			if pos >= len(q) {
				return "", false // unterminated
			}
			if q[pos] == '`' {
				if pos+1 < len(q) && q[pos+1] == '`' {
					name = append(name, '`')
					pos++
					continue
				}
				pos++
				break
			}
			name = append(name, q[pos])
		}
	} else {
		start := pos
		for pos < len(q) && !isSpace(q[pos]) && q[pos] != ';' {
			switch q[pos] {
			case '`', '\'', '"', '/', '#', '-':
				return "", false // quoting or a comment: not a plain name
			}
			pos++
		}
		name = q[start:pos]
	}
	pos = skipSpace(q, pos)
	if pos < len(q) && q[pos] == ';' {
		pos = skipSpace(q, pos+1)
	}
	if pos != len(q) || len(name) == 0 {
		return "", false
	}
	return string(name), true
}

func isKeywordUse(b []byte) bool {
	return b[0]|0x20 == 'u' && b[1]|0x20 == 's' && b[2]|0x20 == 'e'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(q []byte, pos int) int {
	for pos < len(q) && isSpace(q[pos]) {
		pos++
	}
	return pos
}
