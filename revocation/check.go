package revocation

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
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

	// needCert (internal): the issuer's CRLs are scoped (RFC 5280) and
	// the certificate itself decides.
	needCert
)

// String names the status for logs.
func (s Status) String() string {
	return [...]string{"valid", "revoked", "can't use", "don't know", "needs the certificate"}[s]
}

// Asker obtains certificates and trust decisions from the client through
// INQUIREs. Every method may return (nil, nil) / false for "not available".
type Asker interface {
	// SendTarget answers a plain "SENDCERT": the certificate being
	// checked (ISVALID), DER. Errors end the check.
	SendTarget(ctx context.Context) ([]byte, error)
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
// without a fetch. When the issuer's CRLs are scoped (partitions, delta
// CRLs; RFC 5280) or only another issuer's indirect CRL may speak for it,
// the certificate is asked for too and decides (checkInfo).
func (c *Checker) CheckID(ctx context.Context, req *Request, issuerHash string, serial []byte) (Status, error) {
	req = orEmpty(req)
	st, err := c.lookup(ctx, req, issuerHash, serial, req.ForceRefresh)
	if err != nil || (st != DontKnow && st != needCert) {
		return st, err
	}
	if req.Asker == nil {
		if st == needCert {
			return CantUse, nil
		}
		return st, nil
	}
	der, err := req.Asker.SendTarget(ctx)
	if err != nil {
		return DontKnow, err
	}
	cert, err := certinfo.Parse(der)
	if err != nil {
		return DontKnow, err
	}
	if cert.Cert != nil {
		c.learn(cert.Cert)
	}
	return c.recheck(ctx, req, cert, st == DontKnow)
}

// CheckCert answers CHECKCRL for cert: the cached CRLs decide when they
// are current and usable; otherwise the CRL is fetched and the cache
// asked again.
func (c *Checker) CheckCert(ctx context.Context, req *Request, cert *x509.Certificate) (Status, error) {
	in, err := certinfo.Parse(cert.Raw)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: reading the certificate: %w", gpgerr.ErrBadCert)
	}
	return c.CheckCertInfo(ctx, req, in)
}

// CheckCertInfo is CheckCert for a certificate read with certinfo (which
// reads certificates crypto/x509 refuses).
func (c *Checker) CheckCertInfo(ctx context.Context, req *Request, in *certinfo.Info) (Status, error) {
	req = orEmpty(req)
	st, err := c.infoLookup(ctx, req, in, req.ForceRefresh)
	if err != nil || (st != DontKnow && st != CantUse) {
		return st, err
	}
	return c.recheck(ctx, req, in, true)
}

// CertStatus is the cache's answer for cert alone: no fetch, no SENDCERT.
func (c *Checker) CertStatus(ctx context.Context, req *Request, cert *x509.Certificate) (Status, error) {
	req = orEmpty(req)
	in, err := certinfo.Parse(cert.Raw)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: reading the certificate: %w", gpgerr.ErrBadCert)
	}
	return c.infoLookup(ctx, req, in, req.ForceRefresh)
}

// infoLookup is lookup for a known certificate: scoped CRLs are decided
// by checkInfo.
func (c *Checker) infoLookup(ctx context.Context, req *Request, cert *certinfo.Info, forceRefresh bool) (Status, error) {
	st, err := c.lookup(ctx, req, cert.IssuerHash, cert.Serial, forceRefresh)
	if err != nil || st != needCert {
		return st, err
	}
	return c.checkInfo(ctx, req, cert, nil)
}

// expired reports whether a cached CRL is past its nextUpdate, by
// crl.Policy (a stored CRL always has one: Load assumes a day when the CRL
// has none; a zero one counts as expired).
func (c *Checker) expired(m *crlcache.Meta, now time.Time) bool {
	return m.NextUpdate.IsZero() || (crl.Policy{Skew: c.cfg.ClockSkew}).Expired(m.NextUpdate, now)
}

// lookup implements GnuPG's cache_isvalid for issuerHash and serial.
// Only an issuer with one plain full CRL is decided here; any other
// cached state is needCert.
func (c *Checker) lookup(ctx context.Context, req *Request, issuerHash string, serial []byte, forceRefresh bool) (Status, error) {
	// One snapshot: the Meta checked below is the one the entries belong
	// to, even when a new CRL is committed meanwhile.
	res, kind, err := c.cache.CheckPlain(issuerHash, serial)
	if err != nil {
		return DontKnow, err
	}
	switch kind {
	case crlcache.NoCRL:
		c.log.Debug("no CRL available for issuer id", "issuer_hash", issuerHash)
		return DontKnow, nil
	case crlcache.ScopedCRL:
		return needCert, nil
	}
	m := res.Meta
	now := c.cfg.Now()
	if c.expired(m, now) {
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
	return c.signerOK(ctx, req, source{m: m}, &certinfo.Info{IssuerHash: issuerHash, Serial: serial}, nil)
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
