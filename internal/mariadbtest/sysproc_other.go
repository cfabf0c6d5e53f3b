//go:build !linux

package mariadbtest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a server whose test
// binary dies keeps running until killed by hand.
func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
