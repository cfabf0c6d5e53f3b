// Command abortscope-healthcheck is the container image's HEALTHCHECK: it
// GETs the admin API's /healthz and exits 0 on 200, 1 otherwise. The final
// image is distroless (no shell, no curl), so the check is a program of its
// own; /healthz needs no token, so it is given none.
//
//	abortscope-healthcheck [URL]    (default http://127.0.0.1:9307/healthz)
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const defaultURL = "http://127.0.0.1:9307/healthz"

// timeout bounds the whole check: connecting, the answer and its body.
// Docker's own --timeout kills a check that hangs; this one fails first
// and says why.
const timeout = 2 * time.Second

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "abortscope-healthcheck:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	url := defaultURL
	switch len(args) {
	case 0:
	case 1:
		url = args[0]
	default:
		return fmt.Errorf("usage: abortscope-healthcheck [URL] (default %s)", defaultURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	body, err := check(ctx, url)
	if err != nil {
		return err
	}
	fmt.Printf("%s", body) // "ok\nactive_connections N": docker inspect shows it
	return nil
}

// check GETs url and returns the start of its body if it answered 200.
func check(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	return body, nil
}
