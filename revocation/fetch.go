package revocation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// reloadFor fetches the CRL of cert from its distribution points, in
// order; the first success wins, otherwise the last error is returned.
func (c *Checker) reloadFor(ctx context.Context, req *Request, cert *certinfo.Info) error {
	var last error
	tried := 0
	for _, u := range certinfo.URIs(cert.DistributionPoints) {
		switch {
		case hasScheme(u, "http", "https"):
			if c.cfg.IgnoreHTTPDP {
				continue
			}
		case hasScheme(u, "ldap", "ldaps"):
			if c.cfg.IgnoreLDAPDP || c.cfg.DisableLDAP {
				continue
			}
			if c.ldap != nil && c.cfg.AddServers {
				c.ldap.AddServerFromURL(u)
			}
		default:
			continue
		}
		tried++
		if err := c.Fetch(ctx, req, u); err != nil {
			c.log.Info("crl_cache_insert via DP failed", "url", u, "err", err)
			last = err
			continue
		}
		return nil
	}
	if last != nil || tried > 0 {
		return last
	}
	// No usable distribution point: GnuPG then asks its LDAP servers for
	// the issuer's certificateRevocationList.
	switch {
	case c.cfg.DisableLDAP:
		return fmt.Errorf("revocation: no CRL distribution point and LDAP disabled: %w", gpgerr.ErrNotSupported)
	case c.ldap == nil || len(c.ldap.ServersFor(req.LDAPServers)) == 0:
		return fmt.Errorf("revocation: no CRL distribution point and no LDAP server: %w", gpgerr.ErrConfiguration)
	}
	issuer := cert.Issuer
	// "default location(s)": the issuer's entry on the LDAP servers.
	return c.Fetch(ctx, req, "ldap:///"+url.PathEscape(issuer)+"?certificateRevocationList")
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if len(u) > len(s) && u[len(s)] == ':' && strings.EqualFold(u[:len(s)], s) {
			return true
		}
	}
	return false
}

// Fetch downloads the CRL at url and loads it (LOADCRL --url, --fetch-crl,
// distribution points). Concurrent fetches of the same URL share one
// download, unless the one doing it has to wait for its client (see
// Flights).
func (c *Checker) Fetch(ctx context.Context, req *Request, url string) error {
	return c.flights.do(ctx, url, orEmpty(req), func(req *Request) error {
		return c.fetchAndLoad(ctx, req, url)
	})
}

func (c *Checker) fetchAndLoad(ctx context.Context, req *Request, url string) error {
	if hasScheme(url, "ldap", "ldaps") {
		if c.ldap == nil {
			return fmt.Errorf("revocation: no LDAP configuration: %w", gpgerr.ErrNotSupported)
		}
		c.log.Info("fetching CRL", "url", url)
		start := time.Now()
		data, err := c.ldap.FetchURL(ctx, req.LDAPServers, url)
		if err != nil {
			return err
		}
		m, err := c.Load(ctx, req, bytes.NewReader(data), url, fetch.Validators{})
		c.logFetched(url, int64(len(data)), m, start)
		return err
	}
	f := c.fetcher(req)
	if f == nil {
		return fmt.Errorf("revocation: no fetcher: %w", gpgerr.ErrNotSupported)
	}
	c.log.Info("fetching CRL", "url", url)
	// Conditional GET when a current CRL from this URL is cached: an
	// unchanged CRL then only counts as refreshed.
	var prev *fetch.Validators
	var prevHash string
	now := c.cfg.Now()
	for _, m := range c.cache.List() {
		if m.URL == url && m.Flags == 0 && m.NextUpdate.After(now) && (m.ETag != "" || m.LastMod != "") {
			prev = &fetch.Validators{ETag: m.ETag, LastModified: m.LastMod}
			prevHash = m.IssuerHash
			break
		}
	}
	start := time.Now()
	resp, err := f.Get(ctx, url, prev)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.NotModified {
		c.log.Info("CRL not modified", "url", url)
		return c.cache.Touch(prevHash, now)
	}
	body := &countingReader{r: resp.Body}
	m, err := c.Load(ctx, req, body, url, resp.Validators)
	c.logFetched(url, body.n, m, start)
	return err
}

// logFetched logs a CRL fetch that loaded: URL, bytes, entries and time.
func (c *Checker) logFetched(url string, n int64, m *crlcache.Meta, start time.Time) {
	if m == nil {
		return
	}
	entries := m.Entries
	if cm, ok := c.cache.Get(m.IssuerHash); ok {
		entries = cm.Entries
	}
	c.log.Info("CRL fetched", "url", url, "bytes", n, "entries", entries, "time", time.Since(start).Round(time.Millisecond))
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

// fetcher is the HTTP fetcher for req: the configured one, through the
// session's proxy if it set one.
func (c *Checker) fetcher(req *Request) *fetch.Fetcher {
	if c.fetch == nil || req.Proxy == nil {
		return c.fetch
	}
	return c.fetch.WithProxy(*req.Proxy)
}
