package e2ekit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Pending returns the bytes unread in the socket fd (SIOCINQ).
func Pending(fd uintptr) (int, error) { return unix.IoctlGetInt(int(fd), unix.SIOCINQ) }

// UnreadOfProcess returns the bytes the process pid has not read from its
// TCP sockets (rx_queue in /proc/net/tcp and tcp6), the most of any one:
// a test establishes that a client it will kill holds unread data (its
// kernel then resets the connection) or none (it sends FIN).
func UnreadOfProcess(pid int) (int, error) {
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("process %d has no socket", pid)
	}
	most, found := 0, false
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local rem st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || !inodes[fl[9]] {
				continue
			}
			_, rx, _ := strings.Cut(fl[4], ":")
			n, err := strconv.ParseInt(rx, 16, 64)
			if err != nil {
				continue
			}
			found = true
			most = max(most, int(n))
		}
		f.Close()
	}
	if !found {
		return 0, fmt.Errorf("no TCP socket of process %d in /proc/net/tcp", pid)
	}
	return most, nil
}
