package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// LoadFile loads a CRL from a local file (LOADCRL, --load-crl).
func (c *Checker) LoadFile(ctx context.Context, req *Request, name string) (*crlcache.Meta, error) {
	f, err := os.Open(name)
	if err != nil {
		err = gpgerr.ErrorFromOS(err)
		c.rejected(name, err)
		return nil, err
	}
	defer f.Close()
	return c.Load(ctx, req, f, name, fetch.Validators{})
}

// ErrTooOld is returned (wrapped) when the loaded CRL's nextUpdate passed.
var ErrTooOld = fmt.Errorf("revocation: CRL too old: %w", gpgerr.ErrCRLTooOld)

// Load parses, verifies and stores the CRL read from r, which came from
// source (a URL or file name). A CRL that fails any check leaves the
// cached CRL of its issuer untouched, and is logged with its source and
// the reason (GnuPG's "crl_parse_insert failed").
func (c *Checker) Load(ctx context.Context, req *Request, r io.Reader, source string, v fetch.Validators) (*crlcache.Meta, error) {
	m, err := c.load(ctx, orEmpty(req), r, source, v)
	if err != nil {
		c.rejected(source, err)
	}
	return m, err
}

// rejected logs a CRL that was not taken into the cache.
func (c *Checker) rejected(source string, err error) {
	c.log.Error("crl_parse_insert failed", "source", source, "err", err, "code", gpgerr.CodeOf(err).Error())
}

func (c *Checker) load(ctx context.Context, req *Request, r io.Reader, source string, v fetch.Validators) (*crlcache.Meta, error) {
	st, err := c.cache.Begin()
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			st.Abort()
		}
	}()
	info, err := c.parse(ctx, req, r, st)
	if err != nil {
		return nil, err
	}
	if err := checkRFC5280(info); err != nil {
		return nil, err
	}
	now := c.cfg.Now()
	if (crl.Policy{Skew: c.cfg.ClockSkew}).Future(info.ThisUpdate, now) {
		return nil, fmt.Errorf("revocation: CRL of %q issued in the future (%s): %w", info.Issuer, info.ThisUpdate.Format(time.RFC3339), gpgerr.ErrInvCRL)
	}
	if len(info.UnknownCritical) > 0 {
		c.log.Info("unknown critical CRL extension", "oid", info.UnknownCritical[0], "issuer", info.Issuer)
		return nil, fmt.Errorf("revocation: unknown critical CRL extension %s: %w", info.UnknownCritical[0], gpgerr.ErrInvCRL)
	}
	issuer, err := c.findCRLIssuer(ctx, req, info)
	if err != nil {
		return nil, err
	}
	trustFpr, err := c.validateChain(ctx, req, issuer.Cert, now)
	if err != nil {
		return nil, err
	}
	m := metaOf(info, source, trustFpr, v, now)
	m.Signer = issuer.Cert.Raw
	committed, err = c.commit(st, &m, now)
	if err != nil && !errors.Is(err, ErrTooOld) {
		return nil, err
	}
	return &m, err
}

// parse reads the CRL into the staging area, checking ctx and reporting
// progress every 65536 entries.
func (c *Checker) parse(ctx context.Context, req *Request, r io.Reader, st *crlcache.Staging) (*crl.Info, error) {
	var n int64
	return crl.Parse(r, c.cfg.Limits, func(e *crl.Entry) error {
		n++
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if req.Progress != nil {
				req.Progress(n)
			}
		}
		if e.CertIssuerHash != "" {
			// An indirect CRL's entry for another issuer's certificate.
			return st.AddFor(e.CertIssuerHash, e.Serial, uint16(e.Reason), e.RevokedAt)
		}
		return st.Add(e.Serial, uint16(e.Reason), e.RevokedAt)
	})
}

// metaOf is the cache record of a verified CRL.
func metaOf(info *crl.Info, source, trustFpr string, v fetch.Validators, now time.Time) crlcache.Meta {
	m := crlcache.Meta{
		IssuerHash:   info.IssuerHash,
		Scope:        scopeOf(info),
		Delta:        info.IsDelta(),
		BaseNumber:   info.BaseNumberHex(),
		IDP:          info.RawIDP,
		Freshest:     len(info.Freshest) > 0,
		FreshestURLs: certinfo.URIs(info.Freshest),
		IssuerDER:    info.RawIssuer,
		Issuer:       info.Issuer,
		URL:          source,
		ThisUpdate:   info.ThisUpdate,
		NextUpdate:   info.NextUpdate,
		Number:       info.NumberHex(),
		AKIKeyID:     info.AKIKeyID,
		AKISerial:    info.AKISerial,
		AKIIssuer:    info.AKIIssuer,
		TrustFpr:     trustFpr,
		ETag:         v.ETag,
		LastMod:      v.LastModified,
		FetchedAt:    now,
		LastRefresh:  now,
	}
	if m.NextUpdate.IsZero() {
		m.NextUpdate = m.ThisUpdate.Add(24 * time.Hour)
	}
	return m
}

// commit stores the staged CRL described by m. A CRL whose nextUpdate has
// passed is refused with ErrTooOld unless --force; it is then stored
// flagged (as GnuPG does, so that LISTCRLS shows why it is unusable) when
// no usable CRL of its issuer is cached. It reports whether st was
// committed.
func (c *Checker) commit(st *crlcache.Staging, m *crlcache.Meta, now time.Time) (bool, error) {
	tooOld := (crl.Policy{Skew: c.cfg.ClockSkew}).Expired(m.NextUpdate, now)
	if tooOld && !c.cfg.Force {
		c.log.Info("new CRL still too old", "expired", m.NextUpdate.Format("20060102T150405"))
		if cur, ok := c.cache.GetID(m.ID()); ok && cur.Flags == 0 && cur.NextUpdate.After(now) {
			return false, ErrTooOld
		}
		m.Flags = crlcache.FlagTooOld
		if err := st.Commit(*m, crlcache.CommitOptions{AllowRollback: true}); err != nil {
			return false, err
		}
		return true, ErrTooOld
	}
	if tooOld {
		c.log.Warn("new CRL still too old - loading anyway", "expired", m.NextUpdate.Format("20060102T150405"))
	}
	if err := st.Commit(*m, crlcache.CommitOptions{}); err != nil {
		return false, err
	}
	c.log.Info("CRL loaded", "issuer", m.Issuer, "entries", st.Count(), "source", m.URL)
	return true, nil
}

// findCRLIssuer locates and verifies the certificate that signed the CRL:
// by authority key identifier (issuer+serial, or key id) in the cache and
// from the client, then by subject, last from the issuer's LDAP entry.
func (c *Checker) findCRLIssuer(ctx context.Context, req *Request, info *crl.Info) (*certstore.Entry, error) {
	f := &issuerSearch{c: c, info: info}
	ask := req.Asker
	switch {
	case len(info.AKIIssuer) > 0 && info.AKISerial != nil:
		c.log.Debug("locating CRL issuer certificate by authorityKeyIdentifier (issuer+serial)")
		for _, iss := range info.AKIIssuer {
			if e := f.try(c.certs.ByIssuerSerial(iss, info.AKISerial)); e != nil {
				return e, nil
			}
			if ask != nil {
				if e, err := f.fromClient(ask.SendCert(ctx, "#"+crl.SerialHex(info.AKISerial)+"/"+iss)); e != nil || err != nil {
					return e, f.badSigOr(err)
				}
			}
		}
	case info.AKIKeyID != nil:
		c.log.Debug("locating CRL issuer certificate by authorityKeyIdentifier")
		if e := f.try(c.certs.BySKI(info.AKIKeyID, info.Issuer)...); e != nil {
			return e, nil
		}
		// As GnuPG: a cached certificate with the key identifier that
		// does not verify the CRL makes it a bad signature (PKITS 4.4.4);
		// the client is only asked when none is cached.
		if ask != nil && len(f.cands) == 0 {
			if e, err := f.fromClient(ask.SendCertSKI(ctx, info.AKIKeyID, info.Issuer)); e != nil || err != nil {
				return e, f.badSigOr(err)
			}
		}
	}
	if e := f.try(c.certs.BySubject(info.Issuer)...); e != nil {
		return e, nil
	}
	if ask != nil && info.AKIKeyID == nil {
		if e, err := f.fromClient(ask.SendCert(ctx, "/"+info.Issuer)); e != nil || err != nil {
			return e, f.badSigOr(err)
		}
	}
	// Last, the issuer's entry on the configured LDAP servers.
	if lo := c.ldap; lo != nil && !lo.Disabled && len(lo.ServersFor(req.LDAPServers)) > 0 {
		if der, err := lo.FetchURL(ctx, req.LDAPServers, "ldap:///"+url.PathEscape(info.Issuer)+"?cACertificate;binary"); err == nil {
			if e, _ := f.fromClient(der, nil); e != nil {
				return e, nil
			}
		}
	}
	return nil, f.badSigOr(fmt.Errorf("revocation: CRL issuer certificate of %q not found: %w", info.Issuer, gpgerr.ErrMissingCert))
}

// badSigOr returns "Bad signature" when certificates of the CRL issuer
// were found but none verifies the CRL (a client that cannot supply
// another one does not change that), else err.
func (f *issuerSearch) badSigOr(err error) error {
	if err != nil && len(f.cands) > 0 && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("revocation: CRL signature of %q does not verify: %w", f.info.Issuer, gpgerr.ErrBadSignature)
	}
	return err
}

// issuerSearch tries candidate CRL issuer certificates.
type issuerSearch struct {
	c     *Checker
	info  *crl.Info
	cands []*certstore.Entry // tried, signature did not verify
}

// try returns the first entry whose key verifies the CRL.
func (f *issuerSearch) try(list ...*certstore.Entry) *certstore.Entry {
	for _, e := range list {
		if e == nil || e.Subject != f.info.Issuer && len(f.info.AKIIssuer) == 0 {
			continue
		}
		if err := f.info.Verify(e.Cert.PublicKey); err == nil {
			return e
		}
		f.cands = append(f.cands, e)
	}
	return nil
}

// fromClient learns and tries a certificate received (DER) from the
// client or LDAP; a failed inquiry ends the search.
func (f *issuerSearch) fromClient(der []byte, err error) (*certstore.Entry, error) {
	if err != nil {
		return nil, err
	}
	if len(der) == 0 {
		return nil, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		f.c.log.Info("client sent an unusable certificate", "err", err)
		return nil, nil
	}
	return f.try(f.c.learn(cert)), nil
}
