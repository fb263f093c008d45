package collector

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
)

// Client calls a running collector's control API (api.go), as the oplog_collector
// commands status, reset, deregister and resume do.
type Client struct {
	base *url.URL
	http *http.Client
}

// NewClient calls the collector at baseURL with httpClient (made from an HTTP client
// config: basic auth, bearer token, TLS). Credentials in the URL are refused: they
// would show in process lists, shell histories and error messages.
func NewClient(baseURL string, httpClient *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL of a collector, such as http://127.0.0.1:9783", redactURL(baseURL))
	}
	if u.User != nil {
		return nil, errors.New("credentials in the collector's URL are not allowed: put them in an HTTP client config file (--http.config.file), under basic_auth")
	}
	return &Client{base: u, http: httpClient}, nil
}

// URL is the collector's base URL, fit to print.
func (c *Client) URL() string { return c.base.String() }

// APIError is an answer other than success, with the collector's explanation.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Sources lists every source's state.
func (c *Client) Sources(ctx context.Context) ([]Status, error) {
	var out []Status
	return out, c.do(ctx, http.MethodGet, routeSources, "", nil, &out)
}

// Source returns one source's state, with about how many events its store holds.
func (c *Client) Source(ctx context.Context, name string) (Status, error) {
	var out Status
	return out, c.do(ctx, http.MethodGet, routeSource, name, nil, &out)
}

// Reset wipes a source's events and token; the collector captures it again from now.
func (c *Client) Reset(ctx context.Context, name string) (Wiped, error) {
	var out Wiped
	return out, c.do(ctx, http.MethodPost, routeReset, name, ConfirmRequest{Confirm: name}, &out)
}

// Deregister stops capturing a source and deletes everything kept about it.
func (c *Client) Deregister(ctx context.Context, name string) (Wiped, error) {
	var out Wiped
	return out, c.do(ctx, http.MethodPost, routeDeregister, name, ConfirmRequest{Confirm: name}, &out)
}

// Resume captures a source again from a time its oplog still holds (from: earliest, an
// RFC 3339 time or seconds,increment), keeping the stored history.
func (c *Client) Resume(ctx context.Context, name, from string) (Resumed, error) {
	var out Resumed
	return out, c.do(ctx, http.MethodPost, routeResume, name, ConfirmRequest{Confirm: name, From: from}, &out)
}

func (c *Client) do(ctx context.Context, method, route, name string, body, out any) error {
	endpoint := c.base.JoinPath(strings.ReplaceAll(route, "{name}", url.PathEscape(name)))
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint.String(), payload)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return &APIError{Code: resp.StatusCode, Message: strings.TrimSpace(string(text))}
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("unexpected answer from %s: %w", c.base, err)
	}
	return nil
}

// redactURL hides the password of a URL that may not even parse, for error messages.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "<unparsable URL>"
}
