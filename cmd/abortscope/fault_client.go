package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
		return nil, fmt.Errorf("--admin %q: want the admin API's URL, e.g. http://127.0.0.1:9307", admin)
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
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (is abortscope serve running with its admin API at %s?)", err, c.base)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, req.URL, err)
	}
	if resp.StatusCode != want {
		e := &admin.APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s %s: %s", method, req.URL, strings.TrimSpace(string(data)))
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not what abortscope sends: %w", method, req.URL, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
