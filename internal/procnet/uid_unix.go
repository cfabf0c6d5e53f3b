//go:build unix

package procnet

import "syscall"

// ownerUID is the owner of path: for /proc/[pid], the process's effective
// uid (root for a process that made itself non-dumpable).
func ownerUID(path string) (uint32, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, false
	}
	return st.Uid, true
}
