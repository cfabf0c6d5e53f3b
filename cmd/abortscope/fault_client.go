package main

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/abortscope/abortscope/admin"
)

// adminTimeout bounds one call to the admin API.
const adminTimeout = 10 * time.Second

// adminClient calls a running serve's admin API.
type adminClient struct {
	base  string // scheme://host:port, no trailing slash
	token string // bearer token, if the API wants one
	http  *http.Client
}

// newAdminClient takes the --admin value (a URL, or host:port as serve's
// own --admin flag is written) and the token flags.
func newAdminClient(cc *cli.Context, admin string) (*adminClient, error) {
	token, err := adminToken(cc)
	if err != nil {
		return nil, err
	}
	raw := admin
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usagef("--admin %q: want the admin API's URL, e.g. http://127.0.0.1:9307 (or its host:port, as serve's --admin is written)", admin)
	}
	return &adminClient{base: strings.TrimSuffix(u.String(), "/"), token: token, http: &http.Client{Timeout: adminTimeout}}, nil
}

// call sends in (if not nil) as JSON and decodes the answer into out (if
// not nil). An answer other than want is an *admin.APIError.
func (c *adminClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, req.URL, err)
	}
	if resp.StatusCode != want {
		e := &admin.APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			// Not abortscope's JSON: another server holds the address.
			e.Message = fmt.Sprintf("%s %s: %s (is --admin the address of abortscope serve's admin API?)",
				method, req.URL, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not what abortscope sends: %w (is --admin the address of abortscope serve's admin API, and of the same version?)", method, req.URL, err)
	}
	return nil
}

// unreachable says why the admin API could not be asked, and what to do.
func (c *adminClient) unreachable(err error) error {
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return reword(err, "nothing answers at %s (connection refused): is abortscope serve running with its admin API there? "+
			"Start it, or point --admin at its --admin address", c.base)
	case errors.As(err, &dns):
		return reword(err, "--admin %s: cannot resolve %s: %v: check the host name", c.base, dns.Name, dns.Err)
	case errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		return reword(err, "the admin API at %s did not answer within %s: check that its host is reachable and that serve "+
			"is running (not stopped), or point --admin elsewhere", c.base, adminTimeout)
	}
	return reword(err, "cannot reach the admin API at %s: %v: check --admin and that abortscope serve is running", c.base, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
