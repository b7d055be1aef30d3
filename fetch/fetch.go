// Package fetch downloads CRLs and certificates over HTTP(S) with every
// size and time bounded: connect timeout, whole-request timeout, at most
// two redirects and only to http/https, no compression asked for or
// undone (as GnuPG: a body is passed on as it came, so a compressed "bomb"
// costs no memory), a body cap, proxies as configured, and conditional
// GET. Transport failures carry GnuPG's codes and plain messages
// (TransportError).
package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// Config configures a Fetcher. Zero values get the defaults.
type Config struct {
	ConnectTimeout time.Duration // default 15 s (GnuPG's --connect-timeout)
	Timeout        time.Duration // whole request, body included; default 5 min
	MaxBody        int64         // default 512 MiB
	MaxRedirects   int           // default 2
	// NoRelativeRedirects refuses a relative Location as GnuPG's dirmngr
	// does ("Syntax error in URI"); fetch-crl follows them, as LWP does.
	NoRelativeRedirects bool
	// Resolver resolves host names (nil = the system's); tests point it at
	// a loopback name server.
	Resolver *net.Resolver
	// RootCAs verifies https servers (nil = the system's roots).
	RootCAs *x509.CertPool
	// Proxy is an explicit proxy URL ("" = none unless HonorEnvProxy).
	Proxy string
	// HonorEnvProxy uses $http_proxy / $https_proxy when Proxy is "".
	HonorEnvProxy bool
	// DisableHTTP refuses every fetch with "Not supported".
	DisableHTTP bool
	UserAgent   string
}

// Fetcher performs bounded HTTP downloads.
type Fetcher struct {
	cfg    Config
	client *http.Client
	via    *string // WithProxy's override; nil = as configured
}

// New returns a Fetcher for cfg.
func New(cfg Config) *Fetcher {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 512 << 20
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = 2
	}
	f := &Fetcher{cfg: cfg}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.ConnectTimeout, Resolver: cfg.Resolver}).DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		Proxy:                 f.proxy,
		// No Accept-Encoding and no transparent gunzip: GnuPG asks for
		// none, and a 1 MB gzip bomb must not become 1 GB here.
		DisableCompression:     true,
		TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		MaxResponseHeaderBytes: 64 << 10,
		// HTTP/1.1 only (GnuPG speaks 1.0): no HTTP/2 frame floods.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	f.client = &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: f.checkRedirect}
	return f
}

// CloseIdleConnections closes the kept-alive connections to servers.
func (f *Fetcher) CloseIdleConnections() { f.client.CloseIdleConnections() }

// checkRedirect allows at most MaxRedirects redirects, to http or https
// only (GnuPG: "Invalid URI" for file:, ftp:, ldap:, data: …).
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if req.Context().Value(noFollowKey{}) != nil {
		return http.ErrUseLastResponse // Post follows it itself
	}
	if len(via) > f.cfg.MaxRedirects {
		return gpgerr.Errorf(gpgerr.ErrNoData, "more than %d redirects", f.cfg.MaxRedirects)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return gpgerr.Errorf(gpgerr.ErrInvURI, "redirect to a %s: URL refused", req.URL.Scheme)
	}
	if f.cfg.NoRelativeRedirects && req.Response != nil {
		if loc, err := url.Parse(req.Response.Header.Get("Location")); err != nil || !loc.IsAbs() {
			return gpgerr.NewError(gpgerr.ErrBadURI, "relative redirect")
		}
	}
	return nil
}

func (f *Fetcher) proxy(req *http.Request) (*url.URL, error) {
	if p, ok := req.Context().Value(proxyKey{}).(string); ok {
		if p == "" || p == "none" {
			return nil, nil
		}
		return url.Parse(p)
	}
	if f.cfg.Proxy != "" {
		return url.Parse(f.cfg.Proxy)
	}
	if f.cfg.HonorEnvProxy {
		return http.ProxyFromEnvironment(req)
	}
	return nil, nil
}

// proxyKey carries WithProxy's override from a request to the transport's
// proxy function; it never leaves this package.
type proxyKey struct{}

// WithProxy returns a Fetcher that shares f's connections and limits but
// uses proxy ("none" or "" for a direct connection) instead of the
// configured one (OPTION http-proxy).
func (f *Fetcher) WithProxy(proxy string) *Fetcher {
	g := *f
	g.via = &proxy
	return &g
}

// Validators are the cache validators of a previous download.
type Validators struct {
	ETag         string
	LastModified string
}

// Response is a successful download. Body must be closed.
type Response struct {
	Body        io.ReadCloser
	NotModified bool // conditional GET: the resource is unchanged (Body empty)
	Validators  Validators
	URL         string // final URL after redirects
	Header      http.Header
}

// ErrTooLarge is returned when a body exceeds MaxBody.
var ErrTooLarge = fmt.Errorf("fetch: response body too large: %w", gpgerr.ErrTooLarge)

// Get downloads u. HTTP errors map to gpg-error codes as GnuPG's dirmngr
// does: any non-200 status → No data (413 → Too large); --disable-http →
// Not supported; an unusable URL → Invalid URI.
func (f *Fetcher) Get(ctx context.Context, u string, prev *Validators) (*Response, error) {
	return f.GetWithHeaders(ctx, u, prev, nil)
}

// StatusError is wrapped by errors about a non-200 HTTP status.
type StatusError struct {
	Code   int
	Status string // e.g. "404 Not Found"
}

// Error returns "http status 404 Not Found".
func (e *StatusError) Error() string { return "http status " + e.Status }

// statusCoded is a StatusError that also unwraps to its gpg-error code,
// without repeating the code's text in the message.
type statusCoded struct {
	*StatusError
	code gpgerr.Code
}

// Unwrap returns the status and the gpg-error code.
func (e statusCoded) Unwrap() []error { return []error{e.StatusError, e.code} }

// GetWithHeaders is Get with extra request headers.
func (f *Fetcher) GetWithHeaders(ctx context.Context, u string, prev *Validators, hdr http.Header) (*Response, error) {
	if f.cfg.DisableHTTP {
		return nil, fmt.Errorf("fetch: HTTP disabled: %w", gpgerr.ErrNotSupported)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if f.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", f.cfg.UserAgent)
	}
	if prev != nil {
		if prev.ETag != "" {
			req.Header.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			req.Header.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := f.do(ctx, req, u, prev != nil)
	if err != nil {
		return nil, err
	}
	v := Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}
	if resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		return &Response{Body: io.NopCloser(strings.NewReader("")), NotModified: true, Validators: *prev, URL: resp.Request.URL.String(), Header: resp.Header}, nil
	}
	if resp.ContentLength > f.cfg.MaxBody {
		resp.Body.Close()
		return nil, ErrTooLarge
	}
	return &Response{Body: &capped{r: resp.Body, c: resp.Body, left: f.cfg.MaxBody, ctx: ctx, url: u}, Validators: v, URL: resp.Request.URL.String(), Header: resp.Header}, nil
}

// capped fails the read once more than left bytes arrived; a broken or
// timed-out read becomes a TransportError.
type capped struct {
	r    io.Reader
	c    io.Closer
	left int64
	ctx  context.Context
	url  string
}

// Read reads from the body, failing once the cap is exceeded.
func (c *capped) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n + int(c.left), ErrTooLarge // the byte past the cap is not passed on
	}
	if err != nil && err != io.EOF {
		err = transportError(c.ctx, c.url, err)
	}
	return n, err
}

// Close closes the body.
func (c *capped) Close() error { return c.c.Close() }

// Post sends body to u with the given content type and returns the
// response body, at most limit bytes (OCSP). Statuses map as for Get. A
// 301 or 302 is followed by posting the same body again, as GnuPG's
// dirmngr does for OCSP (net/http would turn it into a GET without the
// request), and so are 307 and 308 (which keep the method by definition);
// 303 is not followed.
func (f *Fetcher) Post(ctx context.Context, u, contentType string, body []byte, limit int64) ([]byte, error) {
	if f.cfg.DisableHTTP {
		return nil, fmt.Errorf("fetch: HTTP disabled: %w", gpgerr.ErrNotSupported)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return nil, fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
	}
	first := u
	for hops := 0; ; hops++ {
		req, err := http.NewRequestWithContext(context.WithValue(ctx, noFollowKey{}, true), http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
		}
		req.Header.Set("Content-Type", contentType)
		if f.cfg.UserAgent != "" {
			req.Header.Set("User-Agent", f.cfg.UserAgent)
		}
		resp, err := f.do(ctx, req, u, false)
		if err != nil {
			return nil, err
		}
		if !isRedirect(resp.StatusCode) {
			defer resp.Body.Close()
			return io.ReadAll(&capped{r: resp.Body, c: resp.Body, left: limit, ctx: ctx, url: u})
		}
		resp.Body.Close()
		next := &http.Request{Method: http.MethodPost, URL: resp.Request.URL, Response: resp}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err == nil {
			next.URL = loc
			err = f.checkRedirect(next, make([]*http.Request, hops+1))
		} else {
			err = gpgerr.NewError(gpgerr.ErrBadURI, "bad Location")
		}
		if err != nil {
			return nil, transportError(ctx, first, err)
		}
		u = loc.String()
	}
}

// noFollowKey marks requests whose redirects the caller follows itself.
type noFollowKey struct{}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// do sends req and maps transport errors and statuses to gpg-error codes
// as GnuPG's dirmngr does: transport failures as TransportError (refused
// → Connection refused, unknown host → No name, …), a non-200 status →
// No data (413 → Too large). 304 passes when notModifiedOK.
func (f *Fetcher) do(ctx context.Context, req *http.Request, u string, notModifiedOK bool) (*http.Response, error) {
	if f.via != nil {
		req = req.WithContext(context.WithValue(req.Context(), proxyKey{}, *f.via))
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, transportError(ctx, u, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK, resp.StatusCode == http.StatusNotModified && notModifiedOK:
		return resp, nil
	case isRedirect(resp.StatusCode) && req.Context().Value(noFollowKey{}) != nil:
		return resp, nil // Post follows it
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		resp.Body.Close()
		return nil, fmt.Errorf("error accessing '%s': %w", u, statusCoded{&StatusError{resp.StatusCode, resp.Status}, gpgerr.ErrTooLarge})
	}
	resp.Body.Close()
	return nil, fmt.Errorf("error accessing '%s': %w", u, statusCoded{&StatusError{resp.StatusCode, resp.Status}, gpgerr.ErrNoData})
}
