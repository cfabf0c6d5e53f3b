package mariadbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// errExited marks a mariadbd that ended before it accepted connections, as
// opposed to one that is still starting when the ready timeout runs out.
var errExited = errors.New("mariadbd exited before it was ready")

// innodbLogFileSize is passed to both install-db and mariadbd. The default
// (96M) is written in full at install time, and a size that differs between
// install and boot makes the first boot rebuild the redo log, so both get
// the same small value.
const innodbLogFileSize = "--innodb-log-file-size=8M"

// process is one run of mariadbd. done is closed by the goroutine that owns
// cmd.Wait, after which waitErr is valid.
type process struct {
	cmd     *exec.Cmd
	out     *os.File // mariadbd's stdout+stderr; nearly empty with --log-error
	done    chan struct{}
	waitErr error
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM and waits up to grace (or until ctx ends) for a
// clean exit, then SIGKILLs. A kill after the grace period is reported as an
// error because a test that asked for a graceful shutdown did not get one.
func (p *process) terminate(ctx context.Context, grace time.Duration) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mariadbtest: SIGTERM mariadbd: %w", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var why error
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		why = fmt.Errorf("mariadbtest: mariadbd still running %v after SIGTERM, killed it", grace)
	case <-ctx.Done():
		why = fmt.Errorf("mariadbtest: waiting for mariadbd to stop: %w", ctx.Err())
	}
	return errors.Join(why, p.kill())
}

// kill sends SIGKILL and waits for the process to be reaped, so the port
// and datadir are free when it returns.
func (p *process) kill() error {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mariadbtest: SIGKILL mariadbd: %w", err)
	}
	<-p.done
	return nil
}

// installDB creates the system tables in s.DataDir.
func (s *Server) installDB(ctx context.Context, bin string) error {
	args := []string{
		"--no-defaults", // must come first; ignore /etc/mysql
		"--datadir=" + s.DataDir,
		"--auth-root-authentication-method=normal", // root@localhost, empty password
		"--skip-test-db",
		// --force skips the resolveip check of the host name, which can
		// hang on a machine without DNS; it changes nothing for root@localhost.
		"--force",
		innodbLogFileSize,
		// The bootstrap server too stays off the shared AIO slots (see boot).
		"--innodb-use-native-aio=0",
	}
	args = append(args, s.opts.InstallArgs...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mariadbtest: %s: %w\n%s", bin, err, tail(out, 40))
	}
	return nil
}

// boot starts mariadbd on s.port and waits until it answers. s.mu must be
// held. On failure the process is killed, so no half-started server is left.
func (s *Server) boot(ctx context.Context) error {
	args := []string{
		"--no-defaults", // must come first
		"--datadir=" + s.DataDir,
		"--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(s.DataDir, "sock"),
		"--log-error=" + s.ErrLogPath,
		// 4 adds the "Could not read/write packet ... vio_errno" lines that
		// say how a connection ended; 2 only logs "Aborted connection".
		"--log-warnings=4",
		innodbLogFileSize,
		// Test packages run their servers side by side: keep each small, and
		// off the kernel's AIO slots (fs.aio-max-nr is shared by the whole
		// machine; InnoDB aborts at start-up when it cannot get them).
		"--innodb-use-native-aio=0",
		"--innodb-buffer-pool-size=32M",
	}
	if os.Geteuid() == 0 {
		// mariadbd refuses to run as root unless told to.
		args = append(args, "--user=root")
	}
	args = append(args, s.opts.ExtraArgs...)

	out, err := os.OpenFile(filepath.Join(s.DataDir, "mariadbd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("mariadbtest: open mariadbd output file: %w", err)
	}
	// Not CommandContext: ctx bounds the startup, not the server's life.
	cmd := exec.Command(s.mariadbd, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("mariadbtest: start %s: %w", s.mariadbd, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	s.proc = p

	if err := s.waitReady(ctx, p); err != nil {
		killErr := p.kill()
		return errors.Join(fmt.Errorf("%w\n--- tail of %s ---\n%s", err, s.ErrLogPath, s.logTail()), killErr)
	}
	return nil
}

// waitReady polls with SELECT 1 until it succeeds, the process exits or the
// ready timeout ends.
func (s *Server) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ReadyTimeout)
	defer cancel()
	addr := s.addrLocked()
	began := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(ctx, addr)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("mariadbtest: %w (%v) while starting on %s", errExited, p.waitErr, addr)
		case <-ctx.Done():
			return fmt.Errorf("mariadbtest: mariadbd on %s not ready after %v: %w (last attempt: %w)",
				addr, time.Since(began).Round(time.Millisecond), ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Shutdown stops the server gracefully (SIGTERM, SIGKILL after StopTimeout
// or when ctx ends) but keeps the datadir, so Restart can bring it back and
// the error log stays readable. Shutdown of a stopped server is a no-op.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	return s.proc.terminate(ctx, s.opts.StopTimeout)
}

// Kill SIGKILLs mariadbd, as a crash would end it, and waits until it is
// reaped. The datadir is kept; Restart runs crash recovery on it.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	return s.proc.kill()
}

// Restart starts mariadbd again on the same port and datadir after
// Shutdown or Kill; a server that is still running is shut down gracefully
// first. The admin pool from DB stays valid: its dead connections are
// discarded and replaced on next use.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("mariadbtest: Restart after Stop: the datadir is gone; use Shutdown or Kill instead of Stop")
	}
	if s.proc != nil {
		if err := s.proc.terminate(ctx, s.opts.StopTimeout); err != nil {
			return err
		}
	}
	began := time.Now()
	if err := s.boot(ctx); err != nil {
		return err
	}
	s.logf("mariadbtest: restarted on %s in %v", s.addrLocked(), time.Since(began).Round(time.Millisecond))
	return nil
}

// findBinary returns explicit if set, else name from $PATH, else from the
// sbin/bin directories where Debian puts it (sbin is often not in $PATH
// for non-root users).
func findBinary(explicit, name string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("mariadbtest: %s not found in $PATH, /usr/sbin or /usr/bin: %w", name, exec.ErrNotFound)
}
