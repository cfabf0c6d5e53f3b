package procnet

import (
	"bytes"
	"io"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"
)

// scan is one lookup's search for the process that holds a socket.
type scan struct {
	root, link string // link: "socket:[inode]"
	buf        []byte // for readlink
	deadline   time.Time
	budget     int        // processes left to look into
	hint       func() int // may be nil
	hinted     int        // the hinted pid, once looked into
	tried      []int      // the recent hits, already looked into
}

// tryHint looks into the hinted pid, once there is one, and returns it if
// it holds the socket.
func (sc *scan) tryHint() (found int) {
	if sc.hinted != 0 || sc.hint == nil {
		return 0
	}
	h := sc.hint()
	if h <= 0 || slices.Contains(sc.tried, h) {
		return 0
	}
	sc.hinted = h
	sc.budget--
	if holds(sc.root, h, sc.link, sc.buf, sc.deadline) {
		return h
	}
	return 0
}

// try looks into the hinted pid if it just became known, then into pid.
// The hint is polled before each process (a lock and a look at the
// attributes, against a system call per descriptor for the scan), since a
// short-lived client may be gone before a scan could reach it. It returns
// the pid that holds the socket, or stop when the budget or the time is
// spent.
func (sc *scan) try(pid int) (found int, stop bool) {
	if sc.budget <= 0 || time.Now().After(sc.deadline) {
		return 0, true
	}
	if found := sc.tryHint(); found != 0 {
		return found, false
	}
	if pid == sc.hinted {
		return 0, false
	}
	sc.budget--
	if holds(sc.root, pid, sc.link, sc.buf, sc.deadline) {
		return pid, false
	}
	return 0, false
}

// listPIDs returns the processes under root, highest pid first: pids are
// handed out in increasing order until they wrap, so the newest processes
// (a script that just connected) come first. /proc lists thread-group
// leaders only, so each process is looked at once.
func listPIDs(root string) []int {
	d, err := os.Open(root)
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	slices.Reverse(pids)
	return pids
}

// selfPID is the pid root/self points to, or 0 (a fake tree has none).
func selfPID(root string) int {
	s, err := os.Readlink(root + "/self")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(s)
	return pid
}

// holds reports whether process pid has a descriptor open on link
// ("socket:[48213]"). A process whose fd directory cannot be read (another
// user's, without CAP_SYS_PTRACE; or gone) does not hold it. The deadline
// is checked every 256 descriptors, for processes with very many.
func holds(root string, pid int, link string, buf []byte, deadline time.Time) bool {
	dir := root + "/" + strconv.Itoa(pid) + "/fd/"
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			// A socket's link is "socket:[inode]"; buf is sized for the
			// longest of those, so a longer target (a file path) is cut
			// and simply does not match.
			k, lerr := syscall.Readlink(dir+n, buf)
			if lerr == nil && string(buf[:k]) == link {
				return true
			}
		}
		if err != nil || len(names) == 0 || time.Now().After(deadline) {
			return false
		}
	}
}

// linkBufSize fits "socket:[18446744073709551615]".
const linkBufSize = 32

// cmdline returns the command line of pid on one line: arguments joined by
// spaces (control characters, such as newlines in a `python3 -c` script,
// become spaces too), cut to max bytes on a UTF-8 boundary. A process without one (a kernel thread,
// a zombie) is named by its comm in brackets, as ps does.
func cmdline(root string, pid, max int) string {
	base := root + "/" + strconv.Itoa(pid)
	b := readPrefix(base+"/cmdline", max+utf8.UTFMax)
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		comm := bytes.TrimSpace(readPrefix(base+"/comm", 64))
		if len(comm) == 0 {
			return ""
		}
		return "[" + string(comm) + "]"
	}
	b = maskSecrets(b)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	if len(b) > max {
		i := max
		for i > 0 && !utf8.RuneStart(b[i]) {
			i--
		}
		b = b[:i]
	}
	return string(bytes.TrimRight(b, " "))
}

// readPrefix reads at most n bytes of a file; nil if it cannot be read.
func readPrefix(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, int64(n)))
	return b
}

// maskSecrets replaces the values of password arguments in a NUL-separated
// command line with "***": `mariadb -psecret`, `--password=secret`,
// `--password secret`, `PASSWORD=secret`. The command line goes into events
// and views; a password there would leak to whoever reads them.
func maskSecrets(cmd []byte) []byte {
	args := bytes.Split(cmd, []byte{0})
	for i := 0; i < len(args); i++ {
		a := args[i]
		low := bytes.ToLower(a)
		switch {
		case bytes.HasPrefix(a, []byte("-p")) && len(a) > 2 && !bytes.HasPrefix(a, []byte("--")):
			args[i] = []byte("-p***")
		case bytes.Contains(low, []byte("password=")) || bytes.Contains(low, []byte("passwd=")) || bytes.Contains(low, []byte("pwd=")):
			k := bytes.IndexByte(a, '=')
			args[i] = append(append([]byte(nil), a[:k+1]...), "***"...)
		case (bytes.Equal(low, []byte("--password")) || bytes.Equal(low, []byte("--passwd"))) && i+1 < len(args):
			args[i+1] = []byte("***")
			i++
		}
	}
	return bytes.Join(args, []byte{0})
}
