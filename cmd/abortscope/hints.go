package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"
)

// Errors that say what to do next. Each keeps the error it explains, for
// errors.Is, and tells it in words that name the flag at fault.

// explained is err told in other words.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func reword(err error, format string, args ...any) error {
	return &explained{msg: fmt.Sprintf(format, args...), err: err}
}

// checkHostPort refuses an address flag's value that is not host:port, a
// usage error. example is a value that would do.
func checkHostPort(flag, addr, example string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return asUsage(reword(err, "%s %q: want host:port, e.g. %s", flag, addr, example))
	}
	return nil
}

// listenError explains why a listening socket for flag at addr could not
// be opened.
func listenError(flag, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return reword(err, "%s %s: address already in use: another process holds it (ss -ltnp shows which); stop it, or pick another address with %s",
			flag, addr, flag)
	case errors.Is(err, syscall.EACCES):
		return reword(err, "%s %s: permission denied: a port below 1024 needs root or CAP_NET_BIND_SERVICE; pick a port above 1023 with %s",
			flag, addr, flag)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return reword(err, "%s %s: no interface of this host has that address: give one it has (ip -brief addr), 0.0.0.0 for all, or 127.0.0.1",
			flag, addr)
	}
	return reword(err, "%s %s: %v: give an address this host can listen on, e.g. 127.0.0.1:0 for any free port", flag, addr, err)
}

// fileError explains why the file of flag at path could not be opened;
// what is what the flag wants, for the advice.
func fileError(flag, path string, err error, what string) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return reword(err, "%s %s: no such file: give %s", flag, path, what)
	case errors.Is(err, fs.ErrPermission):
		return reword(err, "%s %s: permission denied: run as a user who may read it, or give %s", flag, path, what)
	}
	return reword(err, "%s %s: %v: give %s", flag, path, err, what)
}
