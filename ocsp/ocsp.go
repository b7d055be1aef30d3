// Package ocsp checks certificates with OCSP. It builds requests (SHA-1
// CertID and a 16-byte nonce, as GnuPG's dirmngr sends them), posts them
// with the project's bounded HTTP fetcher, and verifies responses strictly:
// x/crypto/ocsp only parses DER; the CertID (hash algorithm, issuer name
// hash, issuer key hash and serial), the signer (the issuer, a delegated
// responder issued by it with id-kp-OCSPSigning, or a pinned signer), the
// nonce and the time window are checked here. Verified answers are cached
// in the CRL store until they go stale.
package ocsp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/flight"
)

// MaxResponse is the largest response accepted (GnuPG's limit).
const MaxResponse = 64 << 10

// Config holds the OCSP options.
type Config struct {
	Responder     string        // --ocsp-responder
	Signers       []string      // --ocsp-signer fingerprints (uppercase hex)
	IgnoreAIA     bool          // --ignore-ocsp-service-url
	MaxClockSkew  time.Duration // --ocsp-max-clock-skew (600 s)
	MaxPeriod     time.Duration // --ocsp-max-period (90 days)
	CurrentPeriod time.Duration // --ocsp-current-period (3 h)
	Now           func() time.Time
	DisableHTTP   bool
	// Counters receive the statistics; nil = the Checker's own. Checkers
	// of successive configurations share one.
	Counters *Counters
}

// Counters count OCSP network requests and answers from the cache.
type Counters struct {
	Requests, CacheHits atomic.Int64
}

// Cache stores verified responses (the CRL store implements it).
type Cache interface {
	GetOCSP(key []byte) ([]byte, bool)
	PutOCSP(key, value []byte) error
}

// Result is a verified OCSP answer.
type Result struct {
	Status     int // xocsp.Good, Revoked, Unknown
	ThisUpdate time.Time
	NextUpdate time.Time
	RevokedAt  time.Time
	SignerFpr  string // fingerprint of the signing certificate
	Pinned     bool   // the signer was pinned by --ocsp-signer: no status line
	Signer     *x509.Certificate
	Cached     bool
}

// Checker performs OCSP checks. It is safe for concurrent use.
type Checker struct {
	*shared
	fetch *fetch.Fetcher
}

// shared is the state of a Checker and its WithProxy views.
type shared struct {
	cfg    Config
	cache  Cache
	flight flight.Group[*Result]

	stats *Counters
}

// New returns a Checker; cache may be nil.
func New(cfg Config, f *fetch.Fetcher, cache Cache) *Checker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = 600 * time.Second
	}
	if cfg.MaxPeriod == 0 {
		cfg.MaxPeriod = 90 * 24 * time.Hour
	}
	if cfg.CurrentPeriod == 0 {
		cfg.CurrentPeriod = 3 * time.Hour
	}
	if cfg.Counters == nil {
		cfg.Counters = &Counters{}
	}
	return &Checker{shared: &shared{cfg: cfg, cache: cache, stats: cfg.Counters}, fetch: f}
}

// WithProxy returns a view of c whose requests go through proxy ("" or
// "none" for a direct connection) instead of the configured one (OPTION
// http-proxy). It shares c's cache, statistics and requests in flight.
func (c *Checker) WithProxy(proxy string) *Checker {
	if c.fetch == nil {
		return c
	}
	return &Checker{shared: c.shared, fetch: c.fetch.WithProxy(proxy)}
}

// ErrNoResponder means neither the certificate nor the configuration
// names a responder; callers fall back to CRLs as GnuPG does.
var ErrNoResponder = fmt.Errorf("ocsp: no OCSP responder: %w", gpgerr.ErrConfiguration)

// ResponderURL picks the responder: the certificate's AIA unless ignored
// or forceDefault, else --ocsp-responder (which then needs a signer).
func (c *Checker) ResponderURL(cert *x509.Certificate, forceDefault bool) (string, error) {
	if !forceDefault && !c.cfg.IgnoreAIA {
		for _, u := range cert.OCSPServer {
			if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
				return u, nil
			}
		}
	}
	if c.cfg.Responder != "" && len(c.cfg.Signers) > 0 {
		return c.cfg.Responder, nil
	}
	return "", ErrNoResponder
}

// certID is the DER CertID of cert under issuer (SHA-1).
type certID struct {
	nameHash, keyHash, serial []byte
}

func newCertID(cert, issuer *x509.Certificate) (certID, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return certID{}, fmt.Errorf("ocsp: issuer key: %w", gpgerr.ErrBadCert)
	}
	nh := sha1.Sum(issuer.RawSubject)
	kh := sha1.Sum(spki.PublicKey.RightAlign())
	serial, err := certid.RawSerial(cert)
	if err != nil {
		return certID{}, fmt.Errorf("ocsp: %w", gpgerr.ErrBadCert)
	}
	return certID{nh[:], kh[:], serial}, nil
}

func (id certID) key() []byte {
	return bytes.Join([][]byte{id.nameHash, id.keyHash, id.serial}, nil)
}

var (
	oidSHA1  = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
)

func (id certID) marshal(b *cryptobyte.Builder) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidSHA1)
			b.AddASN1NULL()
		})
		b.AddASN1OctetString(id.nameHash)
		b.AddASN1OctetString(id.keyHash)
		b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(id.serial) })
	})
}

// buildRequest encodes an OCSPRequest for id with a nonce extension whose
// extnValue is an OCTET STRING of nonce (RFC 8954).
func buildRequest(id certID, nonce []byte) ([]byte, []byte) {
	var nv cryptobyte.Builder
	nv.AddASN1OctetString(nonce)
	nonceValue := nv.BytesOrPanic()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // OCSPRequest
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // TBSRequest
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // requestList
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Request
					id.marshal(b)
				})
			})
			b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidNonce)
						b.AddASN1OctetString(nonceValue)
					})
				})
			})
		})
	})
	return b.BytesOrPanic(), nonceValue
}

// Check asks about cert (issued by issuer) at url, or answers from the
// cache. Concurrent checks of the same certificate share one request.
// signers are pinned signer certificates to verify responses that do not
// embed their signer.
func (c *Checker) Check(ctx context.Context, url string, cert, issuer *x509.Certificate, signers ...*x509.Certificate) (*Result, error) {
	id, err := newCertID(cert, issuer)
	if err != nil {
		return nil, err
	}
	if r := c.fromCache(id, issuer); r != nil {
		return r, nil
	}
	r, _, err := c.flight.Do(ctx, string(id.key()), func(func()) (*Result, error) {
		c.stats.Requests.Add(1)
		return c.query(ctx, url, id, issuer, signers)
	})
	return r, err
}

type cached struct {
	Status     int       `json:"status"`
	ThisUpdate time.Time `json:"this"`
	Until      time.Time `json:"until"`
	NextUpdate time.Time `json:"next,omitempty"`
	RevokedAt  time.Time `json:"revoked,omitempty"`
	SignerFpr  string    `json:"signer"`
	Pinned     bool      `json:"pinned,omitempty"`
	SignerDER  []byte    `json:"signer_der,omitempty"`
}

func (c *Checker) fromCache(id certID, issuer *x509.Certificate) *Result {
	if c.cache == nil {
		return nil
	}
	v, ok := c.cache.GetOCSP(id.key())
	if !ok {
		return nil
	}
	var e cached
	if json.Unmarshal(v, &e) != nil || !c.cfg.Now().Before(e.Until) {
		return nil
	}
	r := &Result{Status: e.Status, ThisUpdate: e.ThisUpdate, NextUpdate: e.NextUpdate, RevokedAt: e.RevokedAt,
		SignerFpr: e.SignerFpr, Pinned: e.Pinned, Cached: true}
	if len(e.SignerDER) > 0 {
		r.Signer, _ = x509.ParseCertificate(e.SignerDER)
	}
	c.stats.CacheHits.Add(1)
	return r
}

func (c *Checker) query(ctx context.Context, url string, id certID, issuer *x509.Certificate, signers []*x509.Certificate) (*Result, error) {
	if c.fetch == nil || c.cfg.DisableHTTP {
		return nil, fmt.Errorf("ocsp: HTTP disabled: %w", gpgerr.ErrNotSupported)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	req, nonceValue := buildRequest(id, nonce)
	resp, err := c.fetch.Post(ctx, url, "application/ocsp-request", req, MaxResponse)
	if err != nil {
		return nil, err
	}
	r, err := c.Verify(resp, id, issuer, nonceValue, signers...)
	if err != nil {
		return nil, err
	}
	if c.cache != nil {
		until := r.NextUpdate
		if until.IsZero() {
			until = r.ThisUpdate.Add(c.cfg.CurrentPeriod)
		}
		e := cached{Status: r.Status, ThisUpdate: r.ThisUpdate, Until: until, NextUpdate: r.NextUpdate, RevokedAt: r.RevokedAt,
			SignerFpr: r.SignerFpr, Pinned: r.Pinned}
		if r.Signer != nil {
			e.SignerDER = r.Signer.Raw
		}
		if v, err := json.Marshal(&e); err == nil {
			c.cache.PutOCSP(id.key(), v)
		}
	}
	return r, nil
}

// ErrTimeConflict is wrapped for answers outside the time window.
var ErrTimeConflict = fmt.Errorf("ocsp: response outside its validity window: %w", gpgerr.ErrTimeConflict)

// Verify checks a DER response for id against issuer and the expected
// nonce extension value (nil: none sent).
func (c *Checker) Verify(der []byte, id certID, issuer *x509.Certificate, nonceValue []byte, pinned ...*x509.Certificate) (*Result, error) {
	if len(der) > MaxResponse {
		return nil, fmt.Errorf("ocsp: response larger than %d bytes: %w", MaxResponse, gpgerr.ErrTooLarge)
	}
	resp, err := xocsp.ParseResponse(der, nil)
	if err != nil {
		var re xocsp.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("ocsp: responder status %v: %w", re.Status, gpgerr.ErrGeneral)
		}
		return nil, fmt.Errorf("ocsp: malformed response: %v: %w", err, gpgerr.ErrInvObj)
	}
	// The CertID of the answer must be ours in every field.
	if !responseHasCertID(resp.TBSResponseData, id) || resp.IssuerHash != 0 && resp.IssuerHash.String() != "SHA-1" ||
		!bytes.Equal(resp.SerialNumber.Bytes(), trimSerial(id.serial)) {
		return nil, fmt.Errorf("ocsp: response is about another certificate: %w", gpgerr.ErrNotFound)
	}
	// Signer.
	var signer *x509.Certificate
	if resp.Certificate != nil {
		if err := resp.CheckSignatureFrom(resp.Certificate); err != nil {
			return nil, fmt.Errorf("ocsp: bad response signature: %v: %w", err, gpgerr.ErrBadSignature)
		}
		signer = resp.Certificate
	} else {
		// No embedded signer: the issuer or a pinned signer.
		for _, cand := range append([]*x509.Certificate{issuer}, pinned...) {
			if cand != nil && resp.CheckSignatureFrom(cand) == nil {
				signer = cand
				break
			}
		}
		if signer == nil {
			return nil, fmt.Errorf("ocsp: no certificate to verify the response: %w", gpgerr.ErrNoPubkey)
		}
	}
	fpr := certid.Fingerprint(signer.Raw)
	isPinned := slices.Contains(c.cfg.Signers, fpr)
	switch {
	case isPinned:
	case bytes.Equal(signer.Raw, issuer.Raw):
	case bytes.Equal(signer.RawIssuer, issuer.RawSubject) && signer.CheckSignatureFrom(issuer) == nil:
		if !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, fmt.Errorf("ocsp: delegated responder certificate lacks id-kp-OCSPSigning: %w", gpgerr.ErrBadCACert)
		}
		if resp.ProducedAt.Before(signer.NotBefore) || resp.ProducedAt.After(signer.NotAfter) {
			return nil, fmt.Errorf("ocsp: responder certificate not valid at producedAt: %w", gpgerr.ErrBadCACert)
		}
	default:
		return nil, fmt.Errorf("ocsp: response signed by an unauthorised certificate: %w", gpgerr.ErrBadCACert)
	}
	// Nonce (a responseExtension; x/crypto/ocsp only exposes the
	// singleExtensions): a wrong one is rejected, a missing one accepted.
	nonces := responseNonces(resp.TBSResponseData)
	for _, ext := range resp.Extensions {
		if ext.Id.Equal(oidNonce) {
			nonces = append(nonces, ext.Value)
		}
	}
	for _, n := range nonces {
		if nonceValue != nil && !bytes.Equal(n, nonceValue) {
			return nil, fmt.Errorf("ocsp: nonce mismatch: %w", gpgerr.ErrBadSignature)
		}
	}
	now := c.cfg.Now()
	switch {
	case resp.ThisUpdate.After(now.Add(c.cfg.MaxClockSkew)):
		return nil, fmt.Errorf("ocsp: thisUpdate in the future: %w", ErrTimeConflict)
	case resp.ThisUpdate.Before(now.Add(-c.cfg.MaxPeriod)):
		return nil, fmt.Errorf("ocsp: thisUpdate too old: %w", ErrTimeConflict)
	case !resp.NextUpdate.IsZero() && now.After(resp.NextUpdate.Add(c.cfg.CurrentPeriod)):
		return nil, fmt.Errorf("ocsp: response expired: %w", ErrTimeConflict)
	}
	return &Result{Status: resp.Status, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate, RevokedAt: resp.RevokedAt,
		SignerFpr: fpr, Pinned: isPinned, Signer: signer}, nil
}

func trimSerial(s []byte) []byte {
	for len(s) > 1 && s[0] == 0 {
		s = s[1:]
	}
	return s
}

// responseData reads a ResponseData up to its responses: the version,
// responderID and producedAt are skipped.
func responseData(tbs []byte) (cryptobyte.String, bool) {
	s := cryptobyte.String(tbs)
	var rd cryptobyte.String
	if !s.ReadASN1(&rd, cbasn1.SEQUENCE) {
		return nil, false
	}
	rd.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific())
	var tag cbasn1.Tag
	var responderID cryptobyte.String
	if !rd.ReadAnyASN1(&responderID, &tag) || !rd.SkipASN1(cbasn1.GeneralizedTime) {
		return nil, false
	}
	return rd, true
}

// responseNonces returns the values of nonce extensions among the
// responseExtensions of a ResponseData.
func responseNonces(tbs []byte) [][]byte {
	rd, ok := responseData(tbs)
	if !ok || !rd.SkipASN1(cbasn1.SEQUENCE) {
		return nil
	}
	var wrapped, exts cryptobyte.String
	var present bool
	if !rd.ReadOptionalASN1(&wrapped, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) || !present ||
		!wrapped.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return nil
	}
	var out [][]byte
	for !exts.Empty() {
		var ext, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
			return out
		}
		if ext.PeekASN1Tag(cbasn1.BOOLEAN) {
			var crit bool
			ext.ReadASN1Boolean(&crit)
		}
		if !ext.ReadASN1(&val, cbasn1.OCTET_STRING) {
			return out
		}
		if oid.Equal(oidNonce) {
			out = append(out, append([]byte(nil), val...))
		}
	}
	return out
}

// responseHasCertID reports whether the first SingleResponse carrying
// id's serial has exactly id's hash algorithm and issuer hashes (the one
// x/crypto/ocsp selects).
func responseHasCertID(tbs []byte, id certID) bool {
	rd, ok := responseData(tbs)
	if !ok {
		return false
	}
	var responses cryptobyte.String
	if !rd.ReadASN1(&responses, cbasn1.SEQUENCE) {
		return false
	}
	for !responses.Empty() {
		var single, cid, alg, nh, kh, serial cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !responses.ReadASN1(&single, cbasn1.SEQUENCE) || !single.ReadASN1(&cid, cbasn1.SEQUENCE) ||
			!cid.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
			!cid.ReadASN1(&nh, cbasn1.OCTET_STRING) || !cid.ReadASN1(&kh, cbasn1.OCTET_STRING) ||
			!cid.ReadASN1(&serial, cbasn1.INTEGER) {
			return false
		}
		if !bytes.Equal(trimSerial(serial), trimSerial(id.serial)) {
			continue
		}
		return oid.Equal(oidSHA1) && bytes.Equal(nh, id.nameHash) && bytes.Equal(kh, id.keyHash)
	}
	return false
}

// Signers returns the pinned signer fingerprints.
func (c *Checker) Signers() []string { return c.cfg.Signers }

// Stats returns the number of network requests and cache hits.
func (c *Checker) Stats() (requests, cacheHits int64) {
	return c.stats.Requests.Load(), c.stats.CacheHits.Load()
}
