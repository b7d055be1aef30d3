package revocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/ldap"
)

// Status is the outcome of a check (GnuPG's crl_cache_result_t).
type Status int

// Check outcomes.
const (
	Valid    Status = iota // not listed in a usable CRL
	Revoked                // listed
	CantUse                // a CRL is cached but unusable (invalid, or its root not trusted)
	DontKnow               // no current CRL
)

// String names the status for logs.
func (s Status) String() string {
	return [...]string{"valid", "revoked", "can't use", "don't know"}[s]
}

// Asker obtains certificates and trust decisions from the client through
// INQUIREs. Every method may return (nil, nil) / false for "not available".
type Asker interface {
	// SendTarget answers a plain "SENDCERT": the certificate being
	// checked (ISVALID). Errors end the check.
	SendTarget(ctx context.Context) (*x509.Certificate, error)
	// SendCert answers "SENDCERT <pattern>": "#<sn>/<issuer>", "/<subject>"
	// or a fingerprint.
	SendCert(ctx context.Context, pattern string) ([]byte, error)
	// SendCertSKI answers "SENDCERT_SKI <keyid> /<subject>".
	SendCertSKI(ctx context.Context, keyid []byte, subject string) ([]byte, error)
	// IsTrusted answers "ISTRUSTED <fpr>".
	IsTrusted(ctx context.Context, fpr string) bool
}

// Request carries what one client brings to a check: who answers
// inquiries and the session's overrides. The zero Request (or nil) is a
// check without a client (command-line loads) with the configured
// settings.
type Request struct {
	// Asker answers INQUIREs; nil = no client.
	Asker Asker
	// Proxy overrides the configured HTTP proxy (OPTION http-proxy):
	// nil = as configured, "" = direct.
	Proxy *string
	// LDAPServers are the session's servers (LDAPSERVER), tried before
	// the configured ones.
	LDAPServers []*ldap.Server
	// ForceRefresh: a cached CRL counts as current only when refreshed
	// within the last 30 minutes (OPTION force-crl-refresh).
	ForceRefresh bool
	// Progress is called with the number of entries read so far, every
	// 65536 entries of a CRL load; nil = none.
	Progress func(entries int64)
}

var noRequest = &Request{}

func orEmpty(req *Request) *Request {
	if req == nil {
		return noRequest
	}
	return req
}

// refreshInterval is force-crl-refresh's rule: a CRL counts as fresh when
// refreshed within this period.
const refreshInterval = 30 * time.Minute

// CheckID answers ISVALID for a certificate id (issuer hash, serial as DER
// content octets), GnuPG's way: the cached CRL decides; when none is
// current the client is asked for the certificate (SENDCERT), its CRL is
// fetched and the cache asked again. A cached but unusable CRL is CantUse
// without a fetch.
func (c *Checker) CheckID(ctx context.Context, req *Request, issuerHash string, serial []byte) (Status, error) {
	req = orEmpty(req)
	st, err := c.lookup(ctx, req, issuerHash, serial, req.ForceRefresh)
	if err != nil || st != DontKnow || req.Asker == nil {
		return st, err
	}
	cert, err := req.Asker.SendTarget(ctx)
	if err != nil {
		return DontKnow, err
	}
	c.learn(cert)
	if err := c.reloadFor(ctx, req, cert); err != nil {
		return DontKnow, err
	}
	return c.lookup(ctx, req, issuerHash, serial, req.ForceRefresh)
}

// CheckCert answers CHECKCRL for cert: the cached CRL decides when it is
// current and usable; otherwise the CRL is fetched and the cache asked
// again.
func (c *Checker) CheckCert(ctx context.Context, req *Request, cert *x509.Certificate) (Status, error) {
	req = orEmpty(req)
	st, err := c.certLookup(ctx, req, cert, req.ForceRefresh)
	if err != nil || (st != DontKnow && st != CantUse) {
		return st, err
	}
	if err := c.reloadFor(ctx, req, cert); err != nil {
		return st, err
	}
	return c.certLookup(ctx, req, cert, false)
}

// CertStatus is the cache's answer for cert alone: no fetch, no SENDCERT.
func (c *Checker) CertStatus(ctx context.Context, req *Request, cert *x509.Certificate) (Status, error) {
	req = orEmpty(req)
	return c.certLookup(ctx, req, cert, req.ForceRefresh)
}

func (c *Checker) certLookup(ctx context.Context, req *Request, cert *x509.Certificate, forceRefresh bool) (Status, error) {
	h, err := certid.IssuerHash(cert)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: issuer of certificate: %w", gpgerr.ErrBadCert)
	}
	sn, err := certid.RawSerial(cert)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: serial of certificate: %w", gpgerr.ErrBadCert)
	}
	return c.lookup(ctx, req, h, sn, forceRefresh)
}

// lookup implements GnuPG's cache_isvalid for issuerHash and serial.
func (c *Checker) lookup(ctx context.Context, req *Request, issuerHash string, serial []byte, forceRefresh bool) (Status, error) {
	// One snapshot: the Meta checked below is the one the entries belong
	// to, even when a new CRL is committed meanwhile.
	res, ok, err := c.cache.Check(issuerHash, serial)
	if err != nil {
		return DontKnow, err
	}
	if !ok {
		c.log.Debug("no CRL available for issuer id", "issuer_hash", issuerHash)
		return DontKnow, nil
	}
	m := res.Meta
	now := c.cfg.Now()
	if m.NextUpdate.Before(now) {
		c.log.Info("cached CRL too old; update required", "issuer_hash", issuerHash)
		return DontKnow, nil
	}
	if forceRefresh && (m.LastRefresh.IsZero() || now.Sub(m.LastRefresh) > refreshInterval) {
		c.log.Info("force-crl-refresh active; update required", "issuer_hash", issuerHash)
		return DontKnow, nil
	}
	if m.Flags != 0 {
		return CantUse, nil
	}
	if m.TrustFpr != "" {
		if req.Asker == nil || !req.Asker.IsTrusted(ctx, m.TrustFpr) {
			c.log.Info("CRL issuer root not trusted by the client", "fpr", m.TrustFpr)
			return CantUse, nil
		}
	}
	if res.Revoked {
		return Revoked, nil
	}
	return Valid, nil
}

// learn keeps a certificate a client sent.
func (c *Checker) learn(cert *x509.Certificate) *certstore.Entry {
	e, _, err := c.certs.Add(cert, certstore.Learned)
	if err != nil {
		c.log.Debug("certificate from the client not kept", "err", err)
		return nil
	}
	return e
}
