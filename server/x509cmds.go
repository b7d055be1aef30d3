package server

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/ldap"
	"github.com/dirmngr/dirmngr/ocsp"
	"github.com/dirmngr/dirmngr/revocation"
)

// Inquiry size limits (GnuPG's).
const (
	maxCertLen    = 16384
	maxTrustedLen = 100
	maxSendCert   = 1 << 20 // ISVALID's SENDCERT has no limit in GnuPG; we bound it
)

// asker answers the checker's questions with INQUIREs on one session.
type asker struct {
	as *assuan.Session
	st *session
}

// SendTarget asks for the certificate being checked (plain SENDCERT); it
// is read leniently (package certinfo) by the checker, so a certificate
// crypto/x509 refuses can still be checked.
func (a asker) SendTarget(context.Context) ([]byte, error) {
	der, err := a.as.Inquire("SENDCERT", "", maxSendCert)
	if err != nil {
		return nil, err
	}
	if len(der) == 0 {
		return nil, gpgerr.ErrMissingCert
	}
	return der, nil
}

// SendCert asks the client for a certificate by pattern.
func (a asker) SendCert(_ context.Context, pattern string) ([]byte, error) {
	return a.inquireCert("SENDCERT", pattern)
}

// SendCertSKI asks the client for a certificate by subject key identifier.
func (a asker) SendCertSKI(_ context.Context, keyid []byte, subject string) ([]byte, error) {
	return a.inquireCert("SENDCERT_SKI", strings.ToUpper(hex.EncodeToString(keyid))+" /"+subject)
}

// inquireCert asks for a certificate. DNs are sent unescaped, as GnuPG
// does, but a DN with a line break would break the protocol, so such a
// request is not made.
func (a asker) inquireCert(kw, args string) ([]byte, error) {
	if strings.ContainsAny(args, "\r\n") {
		return nil, nil
	}
	der, err := a.as.Inquire(kw, args, maxCertLen)
	if err != nil {
		if gpgerr.CodeOf(err) == gpgerr.ErrAssCanceled || gpgerr.CodeOf(err) == gpgerr.ErrAssTooMuchData {
			// "not available": try other sources.
			return nil, nil
		}
		return nil, err
	}
	return der, nil
}

// IsTrusted asks ISTRUSTED once per session and fingerprint.
func (a asker) IsTrusted(_ context.Context, fpr string) bool {
	if v, ok := a.st.trusted[fpr]; ok {
		return v
	}
	ans, err := a.as.Inquire("ISTRUSTED", fpr, maxTrustedLen)
	ok := err == nil && len(ans) > 0 && ans[0] == '1' && (len(ans) == 1 || ans[1] == ' ' || ans[1] == '\t')
	if err == nil || gpgerr.CodeOf(err) != gpgerr.ErrAssUnexpectedCmd {
		// Remember answers, not protocol accidents.
		if a.st.trusted == nil {
			a.st.trusted = map[string]bool{}
		}
		a.st.trusted[fpr] = ok
	}
	return ok
}

// request is the check request of this command's session: its client,
// OPTION http-proxy, LDAPSERVER entries, force-crl-refresh and progress
// ticks.
func (c *cmd) request() *revocation.Request {
	st := c.st
	if r := st.req; r != nil && r.ForceRefresh == st.forceCRLRefresh && sameServers(r.LDAPServers, st.ldapServers) &&
		(r.Proxy != nil) == st.httpProxySet && (r.Proxy == nil || *r.Proxy == st.httpProxy) {
		return r // the session's settings are unchanged: no allocation per command
	}
	if st.progress == nil {
		st.progress = progressTicks(c.as)
	}
	// A new Request, never changed once made: a CRL download shared with
	// other sessions (revocation.Flights) may still read an older one.
	r := &revocation.Request{
		Asker:        asker{c.as, st},
		LDAPServers:  st.ldapServers,
		ForceRefresh: st.forceCRLRefresh,
		Progress:     st.progress,
	}
	if st.httpProxySet {
		p := st.httpProxy
		r.Proxy = &p
	}
	st.req = r
	return r
}

// sameServers reports whether a and b are the same slice (LDAPSERVER
// only appends to or clears the session's list).
func sameServers(a, b []*ldap.Server) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// progressTicks reports the progress of CRL loads on the session in
// GnuPG's status format "PROGRESS <what> <char> <cur> <total>":
// "S PROGRESS load_crl ? <entries so far> 0" (0: the total is not known
// before the end), the first at the first report, then at most once a
// second. Loads run on the session's goroutine, so writing is safe.
func progressTicks(as *assuan.Session) func(int64) {
	var last atomic.Int64 // UnixNano of the last report
	return func(entries int64) {
		if now := time.Now().UnixNano(); now-last.Load() >= int64(time.Second) {
			last.Store(now)
			as.Status("PROGRESS", fmt.Sprintf("load_crl ? %d 0", entries))
		}
	}
}

// progress announces a network wait or a long load with "S PROGRESS tick ?
// 0 0", as GnuPG does.
func progress(as *assuan.Session) { as.Status("PROGRESS", "tick ? 0 0") }

// parseCert parses a client-supplied certificate; failures are libksba's
// "BER error".
func parseCert(der []byte) (*x509.Certificate, error) {
	if len(der) == 0 {
		return nil, gpgerr.ErrMissingCert
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &gpgerr.Error{Code: gpgerr.ErrBadBER, Source: gpgerr.SourceKSBA, Err: err}
	}
	return c, nil
}

// inquireCert asks the client for a certificate (INQUIRE <kw>) and parses
// it.
func inquireCert(as *assuan.Session, kw string, limit int) (*x509.Certificate, error) {
	der, err := as.Inquire(kw, "", limit)
	if err != nil {
		return nil, err
	}
	return parseCert(der)
}

// statusCode maps a CRL check's outcome to ISVALID's and CHECKCRL's
// answer.
func statusCode(st revocation.Status, err error) error {
	switch {
	case err != nil:
		return err
	case st == revocation.Valid:
		return nil
	case st == revocation.Revoked:
		return gpgerr.ErrCertRevoked
	}
	return gpgerr.ErrNoCRLKnown
}

func (s *Server) cmdISValid(c *cmd, line string) error {
	onlyOCSP := hasOption(line, "--only-ocsp")
	issuerHash, serial, fpr, detail := parseISValid(skipOptions(line))
	if detail != "" {
		return gpgerr.NewError(gpgerr.ErrAssParameter, detail)
	}
	if fpr != "" {
		// OCSP mode: without allow-ocsp there is no CRL fallback.
		if !c.set.Opts.AllowOCSP {
			return gpgerr.ErrNotSupported
		}
		err := s.isvalidOCSP(c, hasOption(line, "--force-default-responder"))
		if !errors.Is(err, ocsp.ErrNoResponder) {
			return err
		}
		// Neither the certificate nor the configuration names a
		// responder: fall back to the CRL, as GnuPG does.
	}
	if onlyOCSP {
		return gpgerr.ErrNoCRLKnown
	}
	status, err := c.set.CRL.CheckID(c.as.Context(), c.request(), issuerHash, serial)
	if err == nil {
		s.logCheck(c, issuerHash, serial, status)
	}
	return statusCode(status, err)
}

// targetCert returns the certificate named by a fingerprint on the line if
// it is cached, else asks for it with INQUIRE TARGETCERT.
func (c *cmd) targetCert(line string) (*x509.Certificate, error) {
	if fpr, ok := fingerprintFromLine(line); ok {
		if e := c.set.Certs.ByFingerprint(fpr); e != nil {
			return e.Cert, nil
		}
	}
	return inquireCert(c.as, "TARGETCERT", maxCertLen)
}

func (s *Server) cmdCheckCRL(c *cmd, line string) error {
	cert, err := c.targetInfo(line)
	if err != nil {
		return err
	}
	status, err := c.set.CRL.CheckCertInfo(c.as.Context(), c.request(), cert)
	if err == nil {
		s.logCheck(c, cert.IssuerHash, cert.Serial, status)
	}
	return statusCode(status, err)
}

// targetInfo is targetCert for CHECKCRL, read leniently (package
// certinfo): a certificate crypto/x509 refuses for an extension it
// dislikes can still be checked.
func (c *cmd) targetInfo(line string) (*certinfo.Info, error) {
	if fpr, ok := fingerprintFromLine(line); ok {
		if e := c.set.Certs.ByFingerprint(fpr); e != nil {
			return certinfo.Parse(e.Cert.Raw)
		}
	}
	der, err := c.as.Inquire("TARGETCERT", "", maxCertLen)
	if err != nil {
		return nil, err
	}
	return certinfo.Parse(der)
}

// isvalidOCSP is ISVALID's OCSP path: the target and its issuer come from
// the client (SENDCERT, SENDISSUERCERT).
func (s *Server) isvalidOCSP(c *cmd, forceDefault bool) error {
	cert, err := inquireCert(c.as, "SENDCERT", maxCertLen)
	if err != nil {
		if gpgerr.CodeOf(err) == gpgerr.ErrMissingCert {
			return gpgerr.ErrGeneral
		}
		return err
	}
	issuer, err := inquireCert(c.as, "SENDISSUERCERT", maxCertLen)
	if err != nil {
		if gpgerr.CodeOf(err) == gpgerr.ErrMissingCert {
			return gpgerr.ErrGeneral
		}
		return err
	}
	c.set.Certs.Add(cert, certstore.Learned)
	c.set.Certs.Add(issuer, certstore.Learned)
	return s.ocspCheck(c, cert, issuer, forceDefault)
}

// ocspCheck asks the responder about cert and maps the answer.
func (s *Server) ocspCheck(c *cmd, cert, issuer *x509.Certificate, forceDefault bool) error {
	oc := c.set.OCSP
	if c.st.httpProxySet {
		oc = oc.WithProxy(c.st.httpProxy)
	}
	url, err := oc.ResponderURL(cert, forceDefault)
	if err != nil {
		return err
	}
	// Pinned signers not in the cache are asked for (SENDCERT <fpr>).
	var pinned []*x509.Certificate
	for _, f := range oc.Signers() {
		if e := c.set.Certs.ByFingerprint(f); e != nil {
			pinned = append(pinned, e.Cert)
			continue
		}
		der, err := c.as.Inquire("SENDCERT", f, maxCertLen)
		if err != nil || len(der) == 0 {
			continue
		}
		if p, err := x509.ParseCertificate(der); err == nil {
			c.set.Certs.Add(p, certstore.Learned)
			pinned = append(pinned, p)
		}
	}
	res, err := oc.Check(c.as.Context(), url, cert, issuer, pinned...)
	if err != nil {
		return err
	}
	if res.Signer != nil {
		c.set.Certs.Add(res.Signer, certstore.Learned)
	}
	if !res.Pinned {
		c.as.Status("ONLY_VALID_IF_CERT_VALID", res.SignerFpr)
	}
	switch res.Status {
	case xocsp.Good:
		return nil
	case xocsp.Revoked:
		return gpgerr.ErrCertRevoked
	}
	return gpgerr.ErrNoData
}

func (s *Server) cmdCheckOCSP(c *cmd, line string) error {
	if !c.set.Opts.AllowOCSP {
		return gpgerr.ErrNotSupported
	}
	forceDefault := hasOption(line, "--force-default-responder")
	cert, err := c.targetCert(skipOptions(line))
	if err != nil {
		return err
	}
	issuer, err := c.set.CRL.FindIssuer(c.as.Context(), c.request(), cert)
	if gpgerr.CodeOf(err) == gpgerr.ErrMissingIssuerCert {
		return fmt.Errorf("server: issuer of the target certificate not found: %w", gpgerr.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return s.ocspCheck(c, cert, issuer, forceDefault)
}
