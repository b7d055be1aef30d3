// Package revocation answers "is this certificate revoked?" from CRLs. It
// ties the CRL engine (crl), the store (crlcache), the certificate cache
// (certstore) and the HTTP fetcher (fetch) together, following GnuPG
// dirmngr's algorithm (crlcache.c) so that gpgsm sees the same outcomes:
// CRLs are keyed by the hash of their issuer DN; the CRL issuer is located
// through the authority key identifier, the certificate cache and the
// client (SENDCERT inquiries); a CRL whose chain ends in a root that is not
// in trusted-certs is confirmed with the client (ISTRUSTED) on every use.
package revocation

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/ldap"
)

// Status is the outcome of a cache lookup (GnuPG's crl_cache_result_t).
type Status int

// Lookup outcomes.
const (
	Valid    Status = iota // not listed in a usable CRL
	Revoked                // listed
	CantUse                // a CRL is cached but unusable (invalid, or its root not trusted)
	DontKnow               // no current CRL: fetch one
)

// String names the status for logs.
func (s Status) String() string {
	return [...]string{"valid", "revoked", "can't use", "don't know"}[s]
}

// Asker obtains certificates and trust decisions from the client through
// INQUIREs. Every method may return (nil, nil) / false for "not available".
// A nil Asker means no client (command-line loads).
type Asker interface {
	// SendCert answers "SENDCERT <pattern>": "#<sn>/<issuer>", "/<subject>"
	// or a fingerprint.
	SendCert(ctx context.Context, pattern string) ([]byte, error)
	// SendCertSKI answers "SENDCERT_SKI <keyid> /<subject>".
	SendCertSKI(ctx context.Context, keyid []byte, subject string) ([]byte, error)
	// IsTrusted answers "ISTRUSTED <fpr>".
	IsTrusted(ctx context.Context, fpr string) bool
}

// Config tunes the checker.
type Config struct {
	Force            bool     // load CRLs whose nextUpdate has passed
	IgnoreHTTPDP     bool     // skip http(s) distribution points
	IgnoreLDAPDP     bool     // skip ldap distribution points
	DisableLDAP      bool     // --disable-ldap
	AddServers       bool     // --add-servers: remember LDAP hosts seen in DPs
	IgnoreExtensions []string // critical certificate extensions to accept (OIDs)
	Limits           crl.Limits
	ClockSkew        time.Duration // tolerated future thisUpdate; default 10 min
	// Progress receives "tick" events during long operations.
	Now func() time.Time
}

// Checker is safe for concurrent use.
type Checker struct {
	cfgp   atomic.Pointer[Config]
	fetchp atomic.Pointer[fetch.Fetcher]
	ldapp  atomic.Pointer[ldap.Options]
	cache  *crlcache.Cache
	certs  *certstore.Store
	log    *slog.Logger

	flight sync.Mutex
	calls  map[string]*call // single-flight per URL
}

type call struct {
	done chan struct{}
	err  error
}

// New returns a Checker.
func New(cfg Config, cache *crlcache.Cache, certs *certstore.Store, f *fetch.Fetcher, log *slog.Logger) *Checker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = crl.DefaultClockSkew
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Checker{cache: cache, certs: certs, log: log, calls: map[string]*call{}}
	c.cfgp.Store(&cfg)
	if f != nil {
		c.fetchp.Store(f)
	}
	return c
}

func (c *Checker) conf() *Config { return c.cfgp.Load() }

// SetLDAP installs the LDAP options used for ldap:// distribution points
// and for certificates without one.
func (c *Checker) SetLDAP(o *ldap.Options) { c.ldapp.Store(o) }

// LDAP returns the LDAP options in use (nil if none).
func (c *Checker) LDAP() *ldap.Options { return c.ldapp.Load() }

// Fetcher returns the HTTP fetcher in use.
func (c *Checker) Fetcher() *fetch.Fetcher { return c.fetchp.Load() }

// Cache returns the CRL cache.
func (c *Checker) Cache() *crlcache.Cache { return c.cache }

// Certs returns the certificate store.
func (c *Checker) Certs() *certstore.Store { return c.certs }

// refreshInterval is force-crl-refresh's rule: a CRL counts as fresh when
// refreshed within this period.
const refreshInterval = 30 * time.Minute

// Lookup implements GnuPG's cache_isvalid for issuerHash and serial (DER
// content octets).
func (c *Checker) Lookup(ctx context.Context, issuerHash string, serial []byte, forceRefresh bool, ask Asker) (Status, error) {
	m, ok := c.cache.Get(issuerHash)
	if !ok {
		c.log.Debug("no CRL available for issuer id", "issuer_hash", issuerHash)
		return DontKnow, nil
	}
	now := c.conf().Now()
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
	_, revoked, ok, err := c.cache.Lookup(issuerHash, serial)
	if err != nil {
		return DontKnow, err
	}
	if !ok {
		return DontKnow, nil
	}
	if m.TrustFpr != "" {
		if ask == nil || !ask.IsTrusted(ctx, m.TrustFpr) {
			c.log.Info("CRL issuer root not trusted by the client", "fpr", m.TrustFpr)
			return CantUse, nil
		}
	}
	if revoked {
		return Revoked, nil
	}
	return Valid, nil
}

// CertStatus looks up cert in the cache.
func (c *Checker) CertStatus(ctx context.Context, cert *x509.Certificate, forceRefresh bool, ask Asker) (Status, error) {
	h, err := certid.IssuerHash(cert)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: issuer of certificate: %w", gpgerr.ErrBadCert)
	}
	sn, err := certid.RawSerial(cert)
	if err != nil {
		return DontKnow, fmt.Errorf("revocation: serial of certificate: %w", gpgerr.ErrBadCert)
	}
	return c.Lookup(ctx, h, sn, forceRefresh, ask)
}

// ReloadFor fetches the CRL of cert from its distribution points, in
// order; the first success wins, otherwise the last error is returned.
func (c *Checker) ReloadFor(ctx context.Context, cert *x509.Certificate, ask Asker) error {
	var last error
	tried := 0
	for _, u := range cert.CRLDistributionPoints {
		switch {
		case hasScheme(u, "http", "https"):
			if c.conf().IgnoreHTTPDP {
				continue
			}
		case hasScheme(u, "ldap", "ldaps"):
			if c.conf().IgnoreLDAPDP || c.conf().DisableLDAP {
				continue
			}
			if lo := c.ldapp.Load(); lo != nil && c.conf().AddServers {
				lo.AddServerFromURL(u)
			}
		default:
			continue
		}
		tried++
		if err := c.FetchAndLoad(ctx, u, ask); err != nil {
			c.log.Info("crl_cache_insert via DP failed", "url", u, "err", err)
			last = err
			continue
		}
		return nil
	}
	if last == nil && tried == 0 {
		// No usable distribution point: GnuPG then asks its LDAP servers
		// for the issuer's certificateRevocationList.
		lo := c.ldapp.Load()
		switch {
		case c.conf().DisableLDAP:
			return fmt.Errorf("revocation: no CRL distribution point and LDAP disabled: %w", gpgerr.ErrNotSupported)
		case lo == nil || len(lo.ServersFor(ctx)) == 0:
			return fmt.Errorf("revocation: no CRL distribution point and no LDAP server: %w", gpgerr.ErrConfiguration)
		}
		issuer, err := certid.DN(cert.RawIssuer)
		if err != nil {
			return fmt.Errorf("revocation: issuer name: %w", gpgerr.ErrBadCert)
		}
		// "default location(s)": the issuer's entry on the LDAP servers.
		return c.FetchAndLoad(ctx, "ldap:///"+url.PathEscape(issuer)+"?certificateRevocationList", ask)
	}
	return last
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if len(u) > len(s) && u[len(s)] == ':' && equalFold(u[:len(s)], s) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

// FetchAndLoad downloads the CRL at url and loads it. Concurrent calls for
// the same URL share one download.
func (c *Checker) FetchAndLoad(ctx context.Context, url string, ask Asker) error {
	c.flight.Lock()
	if cl, ok := c.calls[url]; ok {
		c.flight.Unlock()
		select {
		case <-cl.done:
			return cl.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	cl := &call{done: make(chan struct{})}
	c.calls[url] = cl
	c.flight.Unlock()
	cl.err = c.fetchAndLoad(ctx, url, ask)
	c.flight.Lock()
	delete(c.calls, url)
	c.flight.Unlock()
	close(cl.done)
	return cl.err
}

func (c *Checker) fetchAndLoad(ctx context.Context, url string, ask Asker) error {
	if hasScheme(url, "ldap", "ldaps") {
		lo := c.ldapp.Load()
		if lo == nil {
			return fmt.Errorf("revocation: no LDAP configuration: %w", gpgerr.ErrNotSupported)
		}
		c.log.Info("fetching CRL", "url", url)
		data, err := lo.FetchURL(ctx, url)
		if err != nil {
			return err
		}
		_, err = c.Load(ctx, bytes.NewReader(data), url, ask, fetch.Validators{})
		return err
	}
	f := c.fetchp.Load()
	if f == nil {
		return fmt.Errorf("revocation: no fetcher: %w", gpgerr.ErrNotSupported)
	}
	c.log.Info("fetching CRL", "url", url)
	// Conditional GET when a current CRL from this URL is cached: an
	// unchanged CRL then only counts as refreshed.
	var prev *fetch.Validators
	var prevHash string
	now := c.conf().Now()
	for _, m := range c.cache.List() {
		if m.URL == url && m.Flags == 0 && m.NextUpdate.After(now) && (m.ETag != "" || m.LastMod != "") {
			prev = &fetch.Validators{ETag: m.ETag, LastModified: m.LastMod}
			prevHash = m.IssuerHash
			break
		}
	}
	resp, err := f.Get(ctx, url, prev)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.NotModified {
		c.log.Info("CRL not modified", "url", url)
		return c.cache.Touch(prevHash, now)
	}
	_, err = c.Load(ctx, resp.Body, url, ask, resp.Validators)
	return err
}

// LoadFile loads a CRL from a local file (LOADCRL, --load-crl).
func (c *Checker) LoadFile(ctx context.Context, name string, ask Asker) (*crlcache.Meta, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, gpgerr.ErrorFromOS(err)
	}
	defer f.Close()
	return c.Load(ctx, f, name, ask, fetch.Validators{})
}

type progressKey struct{}

// WithProgress returns a context whose CRL loads call fn with the number of
// entries read so far, every 65536 entries.
func WithProgress(ctx context.Context, fn func(entries int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// ErrTooOld is returned (wrapped) when the loaded CRL's nextUpdate passed.
var ErrTooOld = fmt.Errorf("revocation: CRL too old: %w", gpgerr.ErrCRLTooOld)

// Load parses, verifies and stores the CRL read from r, which came from
// source (a URL or file name). A CRL that fails any check leaves the
// cached CRL of its issuer untouched.
func (c *Checker) Load(ctx context.Context, r io.Reader, source string, ask Asker, v fetch.Validators) (*crlcache.Meta, error) {
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
	progress, _ := ctx.Value(progressKey{}).(func(int64))
	var n int64
	info, err := crl.Parse(r, c.conf().Limits, func(e *crl.Entry) error {
		n++
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if progress != nil {
				progress(n)
			}
		}
		return st.Add(e.Serial, uint16(e.Reason), e.RevokedAt)
	})
	if err != nil {
		return nil, err
	}
	now := c.conf().Now()
	if (crl.Policy{Skew: c.conf().ClockSkew}).Future(info.ThisUpdate, now) {
		return nil, fmt.Errorf("revocation: CRL of %q issued in the future (%s): %w", info.Issuer, info.ThisUpdate.Format(time.RFC3339), gpgerr.ErrInvCRL)
	}
	if len(info.UnknownCritical) > 0 {
		c.log.Info("unknown critical CRL extension", "oid", info.UnknownCritical[0], "issuer", info.Issuer)
		return nil, fmt.Errorf("revocation: unknown critical CRL extension %s: %w", info.UnknownCritical[0], gpgerr.ErrInvCRL)
	}
	issuer, err := c.findCRLIssuer(ctx, info, ask)
	if err != nil {
		return nil, err
	}
	trustFpr, err := c.validateChain(ctx, issuer.Cert, ask, now)
	if err != nil {
		return nil, err
	}
	m := crlcache.Meta{
		IssuerHash: info.IssuerHash,
		Issuer:     info.Issuer,
		URL:        source,
		ThisUpdate: info.ThisUpdate,
		NextUpdate: info.NextUpdate,
		Number:     info.NumberHex(),
		AKIKeyID:   info.AKIKeyID,
		AKISerial:  info.AKISerial,
		AKIIssuer:  info.AKIIssuer,
		TrustFpr:   trustFpr,
		ETag:       v.ETag,
		LastMod:    v.LastModified,
		FetchedAt:  now,
	}
	if m.NextUpdate.IsZero() {
		m.NextUpdate = m.ThisUpdate.Add(24 * time.Hour)
	}
	m.LastRefresh = now
	tooOld := (crl.Policy{Skew: c.conf().ClockSkew}).Expired(m.NextUpdate, now)
	if tooOld && !c.conf().Force {
		c.log.Info("new CRL still too old", "expired", m.NextUpdate.Format("20060102T150405"))
		// Keep a valid cached CRL; otherwise store this one flagged,
		// as GnuPG does, so that LISTCRLS shows why it is unusable.
		if cur, ok := c.cache.Get(m.IssuerHash); ok && cur.Flags == 0 && cur.NextUpdate.After(now) {
			return nil, ErrTooOld
		}
		m.Flags = crlcache.FlagTooOld
		if err := st.Commit(m, crlcache.CommitOptions{AllowRollback: true}); err != nil {
			return nil, err
		}
		committed = true
		return &m, ErrTooOld
	}
	if tooOld {
		c.log.Warn("new CRL still too old - loading anyway", "expired", m.NextUpdate.Format("20060102T150405"))
	}
	if err := st.Commit(m, crlcache.CommitOptions{}); err != nil {
		return nil, err
	}
	committed = true
	c.log.Info("CRL loaded", "issuer", m.Issuer, "entries", st.Count(), "source", source)
	return &m, nil
}

// findCRLIssuer locates and verifies the certificate that signed the CRL.
func (c *Checker) findCRLIssuer(ctx context.Context, info *crl.Info, ask Asker) (*certstore.Entry, error) {
	var cands []*certstore.Entry
	try := func(list ...*certstore.Entry) *certstore.Entry {
		for _, e := range list {
			if e == nil || e.Subject != info.Issuer && len(info.AKIIssuer) == 0 {
				continue
			}
			if err := info.Verify(e.Cert.PublicKey); err == nil {
				return e
			}
			cands = append(cands, e)
		}
		return nil
	}
	learn := func(der []byte) *certstore.Entry {
		if len(der) == 0 {
			return nil
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			c.log.Info("client sent an unusable certificate", "err", err)
			return nil
		}
		e, _, err := c.certs.Add(cert, certstore.Learned)
		if err != nil {
			return nil
		}
		return e
	}
	switch {
	case len(info.AKIIssuer) > 0 && info.AKISerial != nil:
		c.log.Debug("locating CRL issuer certificate by authorityKeyIdentifier (issuer+serial)")
		for _, iss := range info.AKIIssuer {
			if e := try(c.certs.ByIssuerSerial(iss, info.AKISerial)); e != nil {
				return e, nil
			}
			if ask != nil {
				der, err := ask.SendCert(ctx, "#"+certstore.HexUpper(info.AKISerial)+"/"+iss)
				if err != nil {
					return nil, err
				}
				if e := try(learn(der)); e != nil {
					return e, nil
				}
			}
		}
	case info.AKIKeyID != nil:
		c.log.Debug("locating CRL issuer certificate by authorityKeyIdentifier")
		if e := try(c.certs.BySKI(info.AKIKeyID, info.Issuer)...); e != nil {
			return e, nil
		}
		if ask != nil {
			der, err := ask.SendCertSKI(ctx, info.AKIKeyID, info.Issuer)
			if err != nil {
				return nil, err
			}
			if e := try(learn(der)); e != nil {
				return e, nil
			}
		}
	}
	if e := try(c.certs.BySubject(info.Issuer)...); e != nil {
		return e, nil
	}
	if ask != nil && info.AKIKeyID == nil {
		der, err := ask.SendCert(ctx, "/"+info.Issuer)
		if err != nil {
			return nil, err
		}
		if e := try(learn(der)); e != nil {
			return e, nil
		}
	}
	// Last, the issuer's entry on the configured LDAP servers.
	if lo := c.ldapp.Load(); lo != nil && !lo.Disabled && len(lo.ServersFor(ctx)) > 0 {
		if der, err := lo.FetchURL(ctx, "ldap:///"+url.PathEscape(info.Issuer)+"?cACertificate;binary"); err == nil {
			if e := try(learn(der)); e != nil {
				return e, nil
			}
		}
	}
	if len(cands) > 0 {
		return nil, fmt.Errorf("revocation: CRL signature of %q does not verify: %w", info.Issuer, gpgerr.ErrBadSignature)
	}
	return nil, fmt.Errorf("revocation: CRL issuer certificate of %q not found: %w", info.Issuer, gpgerr.ErrMissingCert)
}

// maxChain is the longest certificate chain accepted for a CRL issuer.
const maxChain = 10

const oidStrCRLSign = "cRLSign"

// validateChain checks the CRL issuer certificate and its chain up to a
// root. It returns "" when the root is a trusted-certs anchor, else the
// root's fingerprint, which the client must confirm (ISTRUSTED) on use.
func (c *Checker) validateChain(ctx context.Context, cert *x509.Certificate, ask Asker, now time.Time) (string, error) {
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
			if !slices.Contains(c.conf().IgnoreExtensions, oid.String()) {
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
		parent, err := c.findParent(ctx, cur, ask)
		if err != nil {
			return "", err
		}
		if !parent.IsCA && parent.BasicConstraintsValid {
			return "", fmt.Errorf("revocation: issuer %q is not a CA: %w", parent.Subject, gpgerr.ErrBadCACert)
		}
		cur = parent
	}
}

func (c *Checker) findParent(ctx context.Context, cert *x509.Certificate, ask Asker) (*x509.Certificate, error) {
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
	if ask != nil {
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
				c.certs.Add(p, certstore.Learned)
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
	fpr, err := c.validateChain(ctx, cert, nil, c.conf().Now())
	if err != nil {
		if errors.Is(err, gpgerr.ErrWrongKeyUsage) {
			// Key usage matters only for CRL issuers; retry the chain
			// from the issuer.
			if certstore.IsSelfSigned(cert) {
				return fmt.Errorf("revocation: %w", gpgerr.ErrNotTrusted)
			}
			p, perr := c.findParent(ctx, cert, nil)
			if perr != nil {
				return perr
			}
			fpr, err = c.validateChain(ctx, p, nil, c.conf().Now())
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
