package procnet

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// crowd starts n idle processes, each holding extra open files on top of
// its stdio (a typical server process holds tens), and stops them when
// the benchmark ends.
func crowd(b *testing.B, n, extra int) {
	b.Helper()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	files := make([]*os.File, extra)
	for i := range files {
		files[i] = devnull
	}
	cmds := make([]*exec.Cmd, 0, n)
	b.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
		}
		for _, c := range cmds {
			c.Wait()
		}
	})
	for i := 0; i < n; i++ {
		c := exec.Command("sleep", "600")
		c.ExtraFiles = files
		if err := c.Start(); err != nil {
			b.Fatalf("starting process %d of %d: %v", i, n, err)
		}
		cmds = append(cmds, c)
	}
}

// BenchmarkLookup: a python3 client and n other processes. With the
// client started first, a scan (highest pid first) reaches it after all
// of them: the worst case. Started last, it is the first looked at: a
// script that just connected. "scan" is a lookup with no recent hits and
// no hint; "hint" one where the client declared its pid (_pid); "recent"
// the next connection of a process found before.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{0, 1000, 3000} {
		for _, order := range []string{"first", "last"} {
			if n == 0 && order == "last" {
				continue
			}
			b.Run(fmt.Sprintf("procs=%d/client=%s", n, order), func(b *testing.B) {
				if order == "last" {
					crowd(b, n, 20)
				}
				cmd, dial := pyClient(b, "4", "127.0.0.1")
				c := accept(b, "tcp", "127.0.0.1:0", dial)
				if order == "first" {
					crowd(b, n, 20)
				}
				b.Logf("%d processes", len(listPIDs("/proc")))
				b.Run("scan", func(b *testing.B) {
					for b.Loop() {
						r := &Resolver{Timeout: slack}
						if pid, _, ok := r.Resolve(c, nil); !ok || pid != cmd.Process.Pid {
							b.Fatalf("Resolve = %d %v, want %d", pid, ok, cmd.Process.Pid)
						}
					}
				})
				b.Run("hint", func(b *testing.B) {
					hint := func() int { return cmd.Process.Pid }
					for b.Loop() {
						r := &Resolver{Timeout: slack}
						if pid, _, ok := r.Resolve(c, hint); !ok || pid != cmd.Process.Pid {
							b.Fatalf("Resolve = %d %v, want %d", pid, ok, cmd.Process.Pid)
						}
					}
				})
				b.Run("recent", func(b *testing.B) {
					r := &Resolver{Timeout: slack}
					r.Resolve(c, nil)
					for b.Loop() {
						if pid, _, ok := r.Resolve(c, nil); !ok || pid != cmd.Process.Pid {
							b.Fatalf("Resolve = %d %v, want %d", pid, ok, cmd.Process.Pid)
						}
					}
				})
			})
		}
	}
}
