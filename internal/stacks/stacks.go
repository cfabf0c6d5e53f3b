// Package stacks lets tests wait for a goroutine to reach a point: a
// function on its stack, and for a read, the network poller.
package stacks

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait waits up to timeout until one goroutine's stack (as a stack dump
// prints it, header line included) satisfies match; then it fails the test
// naming what, with the dump.
func Wait(t testing.TB, timeout time.Duration, what string, match func(goroutine string) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) { // cut short: try again with room for all
			buf = make([]byte, 2*len(buf))
			continue
		}
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if match(g) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine %s after %v:\n%s", what, timeout, buf[:n])
		}
		time.Sleep(time.Millisecond)
	}
}

// In matches a goroutine that runs fn (a function's name as a stack dump
// prints it, e.g. "proxy.(*conn).acceptHeader").
func In(fn string) func(string) bool {
	return func(g string) bool { return strings.Contains(g, fn) }
}

// BlockedIn matches a goroutine parked in the network poller with fn on its
// stack: a read that has begun and waits for bytes.
func BlockedIn(fn string) func(string) bool {
	return func(g string) bool { return strings.Contains(g, "[IO wait") && strings.Contains(g, fn) }
}
