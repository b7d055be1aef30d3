package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// maxChain is the longest certificate chain accepted for a CRL issuer.
const maxChain = 10

const oidStrCRLSign = "cRLSign"

// validateChain checks the CRL issuer certificate and its chain up to a
// root. It returns "" when the root is a trusted-certs anchor, else the
// root's fingerprint, which the client must confirm (ISTRUSTED) on use.
func (c *Checker) validateChain(ctx context.Context, req *Request, cert *x509.Certificate, now time.Time) (string, error) {
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return "", fmt.Errorf("revocation: CRL issuer certificate lacks the %s key usage: %w", oidStrCRLSign, gpgerr.ErrWrongKeyUsage)
	}
	cur := cert
	for depth := 0; ; depth++ {
		if depth >= maxChain {
			return "", fmt.Errorf("revocation: certificate chain longer than %d: %w", maxChain, gpgerr.ErrBadCertChain)
		}
		if now.Before(cur.NotBefore) {
			return "", fmt.Errorf("revocation: certificate %q not yet valid: %w", cur.Subject, gpgerr.ErrCertTooYoung)
		}
		if now.After(cur.NotAfter) {
			return "", fmt.Errorf("revocation: certificate %q expired: %w", cur.Subject, gpgerr.ErrCertExpired)
		}
		for _, oid := range cur.UnhandledCriticalExtensions {
			if !slices.Contains(c.cfg.IgnoreExtensions, oid.String()) {
				return "", fmt.Errorf("revocation: unknown critical extension %s in %q: %w", oid, cur.Subject, gpgerr.ErrUnsupportedCert)
			}
		}
		if certstore.IsSelfSigned(cur) {
			fpr := certid.Fingerprint(cur.Raw)
			if e := c.certs.ByFingerprint(fpr); e != nil && e.Source == certstore.Trusted {
				return "", nil
			}
			c.log.Info("root certificate is good but not trusted", "fpr", fpr)
			return fpr, nil
		}
		parent, err := c.FindIssuer(ctx, req, cur)
		if err != nil {
			return "", err
		}
		if !parent.IsCA && parent.BasicConstraintsValid {
			return "", fmt.Errorf("revocation: issuer %q is not a CA: %w", parent.Subject, gpgerr.ErrBadCACert)
		}
		cur = parent
	}
}

// FindIssuer returns the certificate that issued cert: from the
// certificate cache (by authority key identifier, then by issuer name),
// else from the client (SENDCERT_SKI, or SENDCERT /<issuer>); a
// certificate from the client is kept when it verifies cert.
func (c *Checker) FindIssuer(ctx context.Context, req *Request, cert *x509.Certificate) (*x509.Certificate, error) {
	req = orEmpty(req)
	issuer, err := certid.DN(cert.RawIssuer)
	if err != nil {
		return nil, fmt.Errorf("revocation: issuer name: %w", gpgerr.ErrBadCert)
	}
	var cands []*certstore.Entry
	if len(cert.AuthorityKeyId) > 0 {
		cands = c.certs.BySKI(cert.AuthorityKeyId, issuer)
	}
	cands = append(cands, c.certs.BySubject(issuer)...)
	for _, e := range cands {
		if cert.CheckSignatureFrom(e.Cert) == nil {
			return e.Cert, nil
		}
	}
	if ask := req.Asker; ask != nil {
		var der []byte
		if len(cert.AuthorityKeyId) > 0 {
			der, err = ask.SendCertSKI(ctx, cert.AuthorityKeyId, issuer)
		} else {
			der, err = ask.SendCert(ctx, "/"+issuer)
		}
		if err != nil {
			return nil, err
		}
		if len(der) > 0 {
			p, err := x509.ParseCertificate(der)
			if err == nil && cert.CheckSignatureFrom(p) == nil {
				c.learn(p)
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("revocation: issuer certificate %q not found: %w", issuer, gpgerr.ErrMissingIssuerCert)
}

// Validate checks cert's chain against trusted-certs anchors only (the
// VALIDATE command). It returns Not trusted when the chain ends in a root
// that is not a trusted-certs anchor.
func (c *Checker) Validate(ctx context.Context, cert *x509.Certificate) error {
	fpr, err := c.validateChain(ctx, nil, cert, c.cfg.Now())
	if err != nil {
		if errors.Is(err, gpgerr.ErrWrongKeyUsage) {
			// Key usage matters only for CRL issuers; retry the chain
			// from the issuer.
			if certstore.IsSelfSigned(cert) {
				return fmt.Errorf("revocation: %w", gpgerr.ErrNotTrusted)
			}
			p, perr := c.FindIssuer(ctx, nil, cert)
			if perr != nil {
				return perr
			}
			fpr, err = c.validateChain(ctx, nil, p, c.cfg.Now())
		}
		if err != nil {
			return err
		}
	}
	if fpr != "" {
		return fmt.Errorf("revocation: root %s is not in trusted-certs: %w", fpr, gpgerr.ErrNotTrusted)
	}
	return nil
}
