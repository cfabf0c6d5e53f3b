package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// `abortscope healthcheck` is the container image's HEALTHCHECK: the final
// image is distroless (no shell, no curl), so the binary checks itself.
// It GETs the admin API's /healthz, which answers without the admin
// token, so it takes none.

const (
	defaultHealthzURL = "http://127.0.0.1:9307/healthz"
	// defaultHealthTimeout bounds the whole check: connecting, the answer
	// and its body. It is below the Dockerfile's HEALTHCHECK --timeout, so
	// a check that hangs fails here, saying why, before Docker kills it.
	defaultHealthTimeout = 2 * time.Second
	// healthBodyMax is how much of the answer is printed: /healthz says
	// "ok" and the active connections; docker inspect keeps 4 KiB.
	healthBodyMax = 512
)

func healthcheckCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "healthcheck",
		Usage: "check that a running abortscope serve answers on its admin API's /healthz (the image's HEALTHCHECK)",
		Description: "GETs --url and exits 0 when it answers 200, printing the answer (\"ok\" and the active\n" +
			"connections); else exits 1 with the reason on stderr: nothing listening, no answer within\n" +
			"--timeout, or the HTTP status. /healthz needs no admin token. The Dockerfile's HEALTHCHECK runs\n" +
			"it, the image having no shell and no curl.\n\n" +
			"Examples:\n" +
			"   abortscope healthcheck\n" +
			"   abortscope healthcheck --url 127.0.0.1:9307 --timeout 5s\n" +
			"   abortscope healthcheck --url http://127.0.0.1:9307/healthz",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: defaultHealthzURL,
				Usage: "`URL` of serve's /healthz; serve's --admin host:port works too (then /healthz on it)"},
			&cli.DurationFlag{Name: "timeout", Value: defaultHealthTimeout,
				Usage: "fail when the whole check (connect, answer, body) takes longer than `DURATION`"},
		},
		Action: func(cc *cli.Context) error {
			return healthcheck(cc, stdout)
		},
	}
}

func healthcheck(cc *cli.Context, stdout io.Writer) error {
	target, err := healthzURL(cc.String("url"))
	if err != nil {
		return err
	}
	timeout := cc.Duration("timeout")
	if timeout <= 0 {
		return usagef("--timeout %s: want a duration above 0, e.g. %s", timeout, defaultHealthTimeout)
	}
	ctx, cancel := context.WithTimeout(cc.Context, timeout)
	defer cancel()
	body, err := checkHealthz(ctx, target)
	if err != nil {
		return healthError(target, timeout, err)
	}
	_, err = stdout.Write(body)
	return err
}

// healthzURL takes the --url value: a URL, or host:port as serve's --admin
// is written. A URL without a path gets /healthz.
func healthzURL(raw string) (string, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", asUsage(reword(err, "--url %q: want the URL of serve's /healthz, e.g. %s (or serve's --admin host:port)",
			raw, defaultHealthzURL))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/healthz"
	}
	return u.String(), nil
}

// statusError is an answer other than 200.
type statusError struct {
	url, status string // status as "503 Service Unavailable"
	code        int
	body        []byte
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("GET %s answered %s", e.url, e.status)
	if b := strings.TrimSpace(string(e.body)); b != "" {
		msg += fmt.Sprintf(": %q", b) // quoted: the reason stays one line
	}
	if e.code == http.StatusNotFound {
		msg += " (is --url the /healthz of abortscope serve's admin API?)"
	}
	return msg
}

// checkHealthz GETs target and returns the start of its body if it
// answered 200; another status is a *statusError.
func checkHealthz(ctx context.Context, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	// One request, then the process ends: no connection is kept for
	// another (nor left behind by a test that runs the check in-process).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, healthBodyMax))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: target, status: resp.Status, code: resp.StatusCode, body: body}
	}
	return body, nil
}

// healthError says why the check of target failed, in one line.
func healthError(target string, timeout time.Duration, err error) error {
	var status *statusError
	var dns *net.DNSError
	switch {
	case errors.As(err, &status):
		return err
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return reword(err, "nothing answers at %s (connection refused): is abortscope serve running with its admin API (--admin) on that port?",
			target)
	case errors.As(err, &dns):
		return reword(err, "--url %s: cannot resolve %s: %v: check the host name", target, dns.Name, dns.Err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return reword(err, "%s did not answer within %s (--timeout): serve may be stuck or overloaded, or the host unreachable",
			target, timeout)
	}
	return reword(err, "GET %s: %v", target, err)
}
