package mariadbtest

import "syscall"

// sysProcAttr makes the kernel SIGKILL mariadbd when the test binary dies,
// so a crashed or interrupted test run leaves no server behind. Pdeathsig
// fires when the OS thread that forked the child exits; the Go runtime only
// retires threads whose goroutine exits while locked with LockOSThread, so
// Start must not be called from such a goroutine.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
