package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
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

// SetChecker installs the CRL machinery. Without it the certificate
// commands answer "Not supported".
func (s *Server) SetChecker(c *revocation.Checker) { s.chk.Store(c) }

func (s *Server) checker() (*revocation.Checker, error) {
	c := s.chk.Load()
	if c == nil {
		return nil, fmt.Errorf("server: no CRL cache: %w", gpgerr.ErrNotSupported)
	}
	return c, nil
}

// asker answers the checker's questions with INQUIREs on one session.
type asker struct {
	as *assuan.Session
	st *session
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

func (s *Server) cmdISValid(as *assuan.Session, line string) error {
	onlyOCSP := hasOption(line, "--only-ocsp")
	issuerHash, serial, fpr, detail := parseISValid(skipOptions(line))
	if detail != "" {
		return gpgerr.NewError(gpgerr.ErrAssParameter, detail)
	}
	st := state(as)
	opts := s.Options()
	chk, err := s.checker()
	if err != nil {
		return err
	}
	if fpr != "" {
		// OCSP mode: without allow-ocsp there is no CRL fallback.
		if !opts.AllowOCSP {
			return gpgerr.ErrNotSupported
		}
		err := s.isvalidOCSP(as, chk, hasOption(line, "--force-default-responder"))
		if !errors.Is(err, ocsp.ErrNoResponder) {
			return err
		}
		// Neither the certificate nor the configuration names a
		// responder: fall back to the CRL, as GnuPG does.
	}
	if onlyOCSP {
		return gpgerr.ErrNoCRLKnown
	}
	ask := asker{as, st}
	ctx := withProgress(fetchContext(as, st), as)
	inquired := false
	force := st.forceCRLRefresh
	for {
		status, err := chk.Lookup(ctx, issuerHash, serial, force, ask)
		if err != nil {
			return err
		}
		switch status {
		case revocation.Valid:
			return nil
		case revocation.Revoked:
			return gpgerr.ErrCertRevoked
		case revocation.CantUse:
			return gpgerr.ErrNoCRLKnown
		}
		if inquired {
			return gpgerr.ErrNoCRLKnown
		}
		cert, err := inquireCert(as, "SENDCERT", maxSendCert)
		if err != nil {
			return err
		}
		chk.Certs().Add(cert, certstore.Learned)
		if err := chk.ReloadFor(ctx, cert, ask); err != nil {
			return err
		}
		inquired = true
	}
}

// targetCert returns the certificate named by a fingerprint on the line if
// it is cached, else asks for it with INQUIRE TARGETCERT.
func (s *Server) targetCert(as *assuan.Session, line string, chk *revocation.Checker) (*x509.Certificate, error) {
	if fpr, ok := fingerprintFromLine(line); ok {
		if e := chk.Certs().ByFingerprint(fpr); e != nil {
			return e.Cert, nil
		}
	}
	return inquireCert(as, "TARGETCERT", maxCertLen)
}

func (s *Server) cmdCheckCRL(as *assuan.Session, line string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	cert, err := s.targetCert(as, line, chk)
	if err != nil {
		return err
	}
	st := state(as)
	ask := asker{as, st}
	ctx := withProgress(fetchContext(as, st), as)
	status, err := chk.CertStatus(ctx, cert, st.forceCRLRefresh, ask)
	if err != nil {
		return err
	}
	if status == revocation.DontKnow || status == revocation.CantUse {
		if err := chk.ReloadFor(ctx, cert, ask); err != nil {
			return err
		}
		if status, err = chk.CertStatus(ctx, cert, false, ask); err != nil {
			return err
		}
	}
	switch status {
	case revocation.Valid:
		return nil
	case revocation.Revoked:
		return gpgerr.ErrCertRevoked
	}
	return gpgerr.ErrNoCRLKnown
}

// SetOCSP installs the OCSP checker.
func (s *Server) SetOCSP(c *ocsp.Checker) { s.ocsp.Store(c) }

// isvalidOCSP is ISVALID's OCSP path: the target and its issuer come from
// the client (SENDCERT, SENDISSUERCERT).
func (s *Server) isvalidOCSP(as *assuan.Session, chk *revocation.Checker, forceDefault bool) error {
	cert, err := inquireCert(as, "SENDCERT", maxCertLen)
	if err != nil {
		if gpgerr.CodeOf(err) == gpgerr.ErrMissingCert {
			return gpgerr.ErrGeneral
		}
		return err
	}
	issuer, err := inquireCert(as, "SENDISSUERCERT", maxCertLen)
	if err != nil {
		if gpgerr.CodeOf(err) == gpgerr.ErrMissingCert {
			return gpgerr.ErrGeneral
		}
		return err
	}
	chk.Certs().Add(cert, certstore.Learned)
	chk.Certs().Add(issuer, certstore.Learned)
	return s.ocspCheck(as, chk, cert, issuer, forceDefault)
}

// ocspCheck asks the responder about cert and maps the answer.
func (s *Server) ocspCheck(as *assuan.Session, chk *revocation.Checker, cert, issuer *x509.Certificate, forceDefault bool) error {
	oc := s.ocsp.Load()
	if oc == nil {
		return gpgerr.ErrNotSupported
	}
	url, err := oc.ResponderURL(cert, forceDefault)
	if err != nil {
		return err
	}
	// Pinned signers not in the cache are asked for (SENDCERT <fpr>).
	var pinned []*x509.Certificate
	for _, f := range oc.Signers() {
		if e := chk.Certs().ByFingerprint(f); e != nil {
			pinned = append(pinned, e.Cert)
			continue
		}
		der, err := as.Inquire("SENDCERT", f, maxCertLen)
		if err != nil || len(der) == 0 {
			continue
		}
		if c, err := x509.ParseCertificate(der); err == nil {
			chk.Certs().Add(c, certstore.Learned)
			pinned = append(pinned, c)
		}
	}
	res, err := oc.Check(fetchContext(as, state(as)), url, cert, issuer, pinned...)
	if err != nil {
		return err
	}
	if res.Signer != nil {
		chk.Certs().Add(res.Signer, certstore.Learned)
	}
	if !res.Pinned {
		as.Status("ONLY_VALID_IF_CERT_VALID", res.SignerFpr)
	}
	switch res.Status {
	case xocsp.Good:
		return nil
	case xocsp.Revoked:
		return gpgerr.ErrCertRevoked
	}
	return gpgerr.ErrNoData
}

func (s *Server) cmdCheckOCSP(as *assuan.Session, line string) error {
	if !s.Options().AllowOCSP {
		return gpgerr.ErrNotSupported
	}
	chk, err := s.checker()
	if err != nil {
		return err
	}
	forceDefault := hasOption(line, "--force-default-responder")
	cert, err := s.targetCert(as, skipOptions(line), chk)
	if err != nil {
		return err
	}
	issuer, err := s.findIssuer(as, chk, cert)
	if err != nil {
		return err
	}
	return s.ocspCheck(as, chk, cert, issuer, forceDefault)
}

// findIssuer locates cert's issuer: certificate cache, then the client.
func (s *Server) findIssuer(as *assuan.Session, chk *revocation.Checker, cert *x509.Certificate) (*x509.Certificate, error) {
	dn, err := certid.DN(cert.RawIssuer)
	if err != nil {
		return nil, gpgerr.Wrap(gpgerr.ErrBadCert, err)
	}
	var cands []*certstore.Entry
	if len(cert.AuthorityKeyId) > 0 {
		cands = chk.Certs().BySKI(cert.AuthorityKeyId, dn)
	}
	cands = append(cands, chk.Certs().BySubject(dn)...)
	for _, e := range cands {
		if cert.CheckSignatureFrom(e.Cert) == nil {
			return e.Cert, nil
		}
	}
	ask := asker{as, state(as)}
	var der []byte
	if len(cert.AuthorityKeyId) > 0 {
		der, err = ask.SendCertSKI(as.Context(), cert.AuthorityKeyId, dn)
	} else {
		der, err = ask.SendCert(as.Context(), "/"+dn)
	}
	if err != nil {
		return nil, err
	}
	if len(der) > 0 {
		if c, err := x509.ParseCertificate(der); err == nil && cert.CheckSignatureFrom(c) == nil {
			chk.Certs().Add(c, certstore.Learned)
			return c, nil
		}
	}
	return nil, fmt.Errorf("server: issuer of the target certificate not found: %w", gpgerr.ErrNotFound)
}

func (s *Server) cmdLoadCRL(as *assuan.Session, line string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	useURL := hasOption(line, "--url")
	arg := assuan.UnescapePlus(skipOptions(line))
	if arg == "" {
		return gpgerr.NewError(gpgerr.ErrAssParameter, "filename or URL expected")
	}
	ask := asker{as, state(as)}
	stop := s.progress(as)
	defer stop()
	if useURL {
		return chk.FetchAndLoad(withProgress(fetchContext(as, state(as)), as), arg, ask)
	}
	_, err = chk.LoadFile(withProgress(as.Context(), as), arg, ask)
	return err
}

// fetchContext applies the session's OPTION http-proxy.
func fetchContext(as *assuan.Session, st *session) context.Context {
	ctx := as.Context()
	if len(st.ldapServers) > 0 {
		ctx = ldap.WithServers(ctx, st.ldapServers)
	}
	if st.httpProxySet {
		ctx = fetch.WithProxy(ctx, st.httpProxy)
	}
	return ctx
}

// progress announces a network wait or a long load with "S PROGRESS tick ?
// 0 0", as GnuPG does, at most once a second.
func (s *Server) progress(as *assuan.Session) func() {
	as.Status("PROGRESS", "tick ? 0 0")
	return func() {}
}

// withProgress makes CRL loads on ctx send progress ticks on the session.
// The loads run on the session's goroutine, so writing is safe.
func withProgress(ctx context.Context, as *assuan.Session) context.Context {
	last := time.Now()
	return revocation.WithProgress(ctx, func(int64) {
		if time.Since(last) >= time.Second {
			last = time.Now()
			as.Status("PROGRESS", "tick ? 0 0")
		}
	})
}

func (s *Server) cmdListCRLs(as *assuan.Session, _ string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	w := &dataWriter{as: as}
	if err := WriteCRLList(w, chk.Cache()); err != nil {
		return err
	}
	return w.err
}

type dataWriter struct {
	as  *assuan.Session
	err error
}

// Write sends p as D lines; the first error sticks.
func (w *dataWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		w.err = w.as.Data(p)
	}
	return len(p), w.err
}

// WriteCRLList writes GnuPG's LISTCRLS text for every cached CRL.
func WriteCRLList(w interface{ Write([]byte) (int, error) }, cache *crlcache.Cache) error {
	for _, m := range cache.List() {
		var b strings.Builder
		b.WriteString("--------------------------------------------------------\n")
		fmt.Fprintf(&b, "Begin CRL dump (retrieved via %s)\n", m.URL)
		fmt.Fprintf(&b, " Issuer:\t%s\n", m.Issuer)
		fmt.Fprintf(&b, " Issuer Hash:\t%s\n", m.IssuerHash)
		fmt.Fprintf(&b, " This Update:\t%s\n", isoTime(m.ThisUpdate))
		fmt.Fprintf(&b, " Next Update:\t%s\n", isoTime(m.NextUpdate))
		num := m.Number
		if num == "" {
			num = "none"
		}
		fmt.Fprintf(&b, " CRL Number :\t%s\n", num)
		if len(m.AKISerial) > 0 && len(m.AKIIssuer) > 0 {
			fmt.Fprintf(&b, " AuthKeyId  :\t%s\n", certstore.HexUpper(m.AKISerial))
			for _, n := range m.AKIIssuer {
				fmt.Fprintf(&b, "             \t%s\n", n)
			}
		} else {
			b.WriteString(" AuthKeyId  :\tnone\n")
		}
		trust := m.TrustFpr
		if trust == "" {
			trust = "[system]"
		}
		fmt.Fprintf(&b, " Trust Check:\t%s\n", trust)
		if m.Flags&crlcache.FlagTooOld != 0 {
			b.WriteString(" ERROR: The CRL will not be used because it was still too old after an update!\n")
		}
		if m.Flags&crlcache.FlagUnknownCritical != 0 {
			b.WriteString(" ERROR: The CRL will not be used due to an unknown critical extension!\n")
		}
		if m.Flags&^3 != 0 {
			b.WriteString(" ERROR: The CRL will not be used\n")
		}
		b.WriteString("\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		var line []byte
		err := cache.ForEach(m.IssuerHash, func(serial []byte, e crlcache.Entry) error {
			line = line[:0]
			line = append(line, "  "...)
			line = append(line, certstore.HexUpper(serial)...)
			line = append(line, ":\t reasons( "...)
			line = append(line, reasonNames(e.Reason)...)
			line = append(line, ") rdate: "...)
			line = append(line, isoTime(e.RevokedAt)...)
			line = append(line, '\n')
			_, err := w.Write(line)
			return err
		})
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("End CRL dump\n\n")); err != nil {
			return err
		}
	}
	return nil
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format("20060102T150405")
}

// reasonNames renders reason bits with GnuPG's names, including its
// inconsistent trailing blanks.
func reasonNames(r uint16) string {
	var b strings.Builder
	for _, n := range []struct {
		bit  uint16
		name string
	}{
		{0x01, "unspecified "}, {0x02, "key_compromise "}, {0x04, "ca_compromise "},
		{0x08, "affiliation_changed "}, {0x10, "superseded"}, {0x20, "cessation_of_operation"},
		{0x40, "certificate_hold"}, {0x8000, "other"},
	} {
		if r&n.bit != 0 {
			b.WriteString(n.name)
		}
	}
	return b.String()
}

func (s *Server) cmdCacheCert(as *assuan.Session, _ string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	cert, err := inquireCert(as, "TARGETCERT", maxCertLen)
	if err != nil {
		return err
	}
	_, added, err := chk.Certs().Add(cert, certstore.Learned)
	if err != nil {
		return gpgerr.Wrap(gpgerr.ErrBadCert, err)
	}
	if !added {
		return gpgerr.ErrDupValue
	}
	return nil
}

func (s *Server) cmdValidate(as *assuan.Session, line string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	if hasOption(line, "--tls") {
		return gpgerr.ErrNotImplemented
	}
	cert, err := inquireCert(as, "TARGETCERT", maxCertLen)
	if err != nil {
		return err
	}
	return chk.Validate(as.Context(), cert)
}

func (s *Server) cmdFlushCRLs(as *assuan.Session, _ string) error {
	if !allowedControl(as) {
		return gpgerr.ErrForbidden
	}
	chk, err := s.checker()
	if err != nil {
		return err
	}
	if err := chk.Cache().Flush(); err != nil {
		return gpgerr.Wrap(gpgerr.ErrGeneral, err)
	}
	return nil
}

func (s *Server) cmdLookup(as *assuan.Session, line string) error {
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
		return s.lookupURL(as, assuan.UnescapePlus(strings.TrimSpace(rest)))
	}
	chk, err := s.checker()
	if err != nil {
		return err
	}
	var patterns []string
	for _, p := range strings.Fields(rest) {
		patterns = append(patterns, assuan.UnescapePlus(p))
	}
	maxReplies := s.Options().MaxReplies
	if !cacheOnly {
		// Without --cache-only the LDAP servers are asked (GnuPG does not
		// consult its cache here either).
		lo := chk.LDAP()
		if lo == nil || len(lo.ServersFor(fetchContext(as, state(as)))) == 0 {
			return nil // no LDAP server configured: plain OK, as observed
		}
		limit := maxReplies
		if single {
			limit = 1
		}
		sent := 0
		for _, p := range patterns {
			truncated, err := lo.Lookup(fetchContext(as, state(as)), p, limit-sent, func(der []byte) error {
				sent++
				if err := as.Data(der); err != nil {
					return err
				}
				return as.End()
			})
			if truncated {
				as.Status("TRUNCATED", fmt.Sprint(maxReplies))
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
	sent := 0
	seen := map[string]bool{}
	for _, p := range patterns {
		entries, err := lookupCache(chk.Certs(), p)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if seen[e.Fpr] {
				continue
			}
			if maxReplies > 0 && sent >= maxReplies {
				as.Status("TRUNCATED", fmt.Sprint(maxReplies))
				return nil
			}
			seen[e.Fpr] = true
			if err := as.Data(e.Cert.Raw); err != nil {
				return err
			}
			if err := as.End(); err != nil {
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
	if len(f) == 40 && isHex(f) {
		if e := store.ByFingerprint(f); e != nil {
			return []*certstore.Entry{e}, nil
		}
		return nil, nil
	}
	return nil, gpgerr.ErrInvName
}

func (s *Server) lookupURL(as *assuan.Session, u string) error {
	chk, err := s.checker()
	if err != nil {
		return err
	}
	if strings.HasPrefix(strings.ToLower(u), "ldap") {
		lo := chk.LDAP()
		if lo == nil {
			return gpgerr.ErrNotSupported
		}
		der, err := lo.FetchURL(fetchContext(as, state(as)), u)
		if err != nil {
			return err
		}
		if _, err := parseCert(der); err != nil {
			return err
		}
		if err := as.Data(der); err != nil {
			return err
		}
		return as.End()
	}
	f := chk.Fetcher()
	s.progress(as)
	resp, err := f.Get(fetchContext(as, state(as)), u, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(limitReader(resp.Body, maxCertLen*4)); err != nil {
		return gpgerr.Wrap(gpgerr.ErrNoData, err)
	}
	if _, err := parseCert(buf.Bytes()); err != nil {
		return err
	}
	if err := as.Data(buf.Bytes()); err != nil {
		return err
	}
	return as.End()
}

type limited struct {
	r interface{ Read([]byte) (int, error) }
	n int
}

func limitReader(r interface{ Read([]byte) (int, error) }, n int) *limited {
	return &limited{r, n}
}

// Read reads at most the remaining budget.
func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("certificate too large")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}
