package server

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/gpgerr"
)

func (s *Server) cmdCacheCert(c *cmd, _ string) error {
	cert, err := inquireCert(c.as, "TARGETCERT", maxCertLen)
	if err != nil {
		return err
	}
	_, added, err := c.set.Certs.Add(cert, certstore.Learned)
	if err != nil {
		return gpgerr.Wrap(gpgerr.ErrBadCert, err)
	}
	if !added {
		return gpgerr.ErrDupValue
	}
	return nil
}

func (s *Server) cmdValidate(c *cmd, line string) error {
	if hasOption(line, "--tls") {
		return gpgerr.ErrNotImplemented
	}
	cert, err := inquireCert(c.as, "TARGETCERT", maxCertLen)
	if err != nil {
		return err
	}
	return c.set.CRL.Validate(c.as.Context(), cert)
}

func (s *Server) cmdLookup(c *cmd, line string) error {
	useURL := hasOption(line, "--url")
	single := hasOption(line, "--single")
	cacheOnly := hasOption(line, "--cache-only")
	rest := skipOptions(line)
	if useURL {
		if cacheOnly {
			return gpgerr.ErrNotFound
		}
		if single {
			return gpgerr.ErrNotImplemented
		}
		return c.lookupURL(assuan.UnescapePlus(strings.TrimSpace(rest)))
	}
	var patterns []string
	for _, p := range strings.Fields(rest) {
		patterns = append(patterns, assuan.UnescapePlus(p))
	}
	if !cacheOnly {
		// Without --cache-only the LDAP servers are asked (GnuPG does not
		// consult its cache here either).
		return c.lookupLDAP(patterns, single)
	}
	return c.lookupCached(patterns, single)
}

// sendCert sends one LOOKUP result: the DER as data, then END.
func (c *cmd) sendCert(der []byte) error {
	if err := c.as.Data(der); err != nil {
		return err
	}
	return c.as.End()
}

// lookupLDAP answers LOOKUP from the session's and the configured LDAP
// servers.
func (c *cmd) lookupLDAP(patterns []string, single bool) error {
	lo := c.set.LDAP
	if lo == nil || len(lo.ServersFor(c.st.ldapServers)) == 0 {
		return nil // no LDAP server configured: plain OK, as observed
	}
	maxReplies := c.set.Opts.MaxReplies
	limit := maxReplies
	if single {
		limit = 1
	}
	sent := 0
	for _, p := range patterns {
		truncated, err := lo.Lookup(c.as.Context(), c.st.ldapServers, p, limit-sent, func(der []byte) error {
			sent++
			return c.sendCert(der)
		})
		if truncated {
			c.as.Status("TRUNCATED", fmt.Sprint(maxReplies))
			return nil
		}
		if err != nil && sent == 0 {
			return err
		}
		if limit > 0 && sent >= limit {
			break
		}
	}
	return nil
}

// lookupCached answers LOOKUP --cache-only from the certificate cache.
func (c *cmd) lookupCached(patterns []string, single bool) error {
	maxReplies := c.set.Opts.MaxReplies
	sent := 0
	seen := map[string]bool{}
	for _, p := range patterns {
		entries, err := lookupCache(c.set.Certs, p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if seen[e.Fpr] {
				continue
			}
			if maxReplies > 0 && sent >= maxReplies {
				c.as.Status("TRUNCATED", fmt.Sprint(maxReplies))
				return nil
			}
			seen[e.Fpr] = true
			if err := c.sendCert(e.Cert.Raw); err != nil {
				return err
			}
			sent++
			if single {
				return nil
			}
		}
	}
	if sent == 0 {
		return gpgerr.ErrNoData
	}
	return nil
}

// lookupCache finds certificates for one LOOKUP pattern: a fingerprint
// (optionally "0x" or ":fpr:" prefixed), "#<sn>/<issuer>", "#/<issuer>" or
// "/<subject>". Other forms are "Invalid name".
func lookupCache(store *certstore.Store, p string) ([]*certstore.Entry, error) {
	switch {
	case strings.HasPrefix(p, "#/"):
		return store.ByIssuer(p[2:]), nil
	case strings.HasPrefix(p, "#"):
		sn, issuer, ok := strings.Cut(p[1:], "/")
		raw, err := hex.DecodeString(sn)
		if !ok || err != nil {
			return nil, gpgerr.ErrInvName
		}
		if e := store.ByIssuerSerial(issuer, raw); e != nil {
			return []*certstore.Entry{e}, nil
		}
		return nil, nil
	case strings.HasPrefix(p, "/"):
		return store.BySubject(p[1:]), nil
	}
	f := strings.TrimPrefix(strings.TrimPrefix(p, "0x"), ":")
	if _, err := hex.DecodeString(f); len(f) == 40 && err == nil {
		if e := store.ByFingerprint(f); e != nil {
			return []*certstore.Entry{e}, nil
		}
		return nil, nil
	}
	return nil, gpgerr.ErrInvName
}

// lookupURL answers LOOKUP --url: one certificate from an ldap or http(s)
// URL.
func (c *cmd) lookupURL(u string) error {
	if strings.HasPrefix(strings.ToLower(u), "ldap") {
		if c.set.LDAP == nil {
			return gpgerr.ErrNotSupported
		}
		der, err := c.set.LDAP.FetchURL(c.as.Context(), c.st.ldapServers, u)
		if err != nil {
			return err
		}
		if _, err := parseCert(der); err != nil {
			return err
		}
		return c.sendCert(der)
	}
	f := c.set.Fetch
	if c.st.httpProxySet {
		f = f.WithProxy(c.st.httpProxy)
	}
	progress(c.as)
	resp, err := f.Get(c.as.Context(), u, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	const limit = maxCertLen * 4
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return gpgerr.Wrap(gpgerr.ErrNoData, err)
	}
	if buf.Len() > limit {
		return gpgerr.Wrap(gpgerr.ErrNoData, fmt.Errorf("certificate too large"))
	}
	if _, err := parseCert(buf.Bytes()); err != nil {
		return err
	}
	return c.sendCert(buf.Bytes())
}
