package revocation

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// RFC 5280 revocation semantics (§5.2.4–5.2.5, §5.3.3, §6.3): which
// cached CRLs speak for a certificate (issuer, issuingDistributionPoint
// scope, indirect CRLs named by cRLIssuer), what they say together
// (reason coverage; a delta CRL applied to its base) and whether their
// separate signers are themselves unrevoked.
//
// Storage: crlcache holds each CRL of an issuer in its own slot
// (crlcache.CRLID: issuer, scope = SHA-1 of the IDP, delta); an indirect
// CRL's entries for other issuers' certificates are kept under the
// certificate issuer (Staging.AddFor, LookupIn).

// scopeOf returns the scope name of a CRL: the SHA-1 of its IDP.
func scopeOf(info *crl.Info) string {
	if info.RawIDP == nil {
		return ""
	}
	s := sha1.Sum(info.RawIDP)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// slotsOf returns the cached CRLs of an issuer (every scope, base and
// delta).
func (c *Checker) slotsOf(issuerHash string) []crlcache.Meta {
	var out []crlcache.Meta
	for _, m := range c.cache.CRLsFor(issuerHash) {
		if m.IssuerHash == issuerHash {
			out = append(out, m)
		}
	}
	return out
}

// source is one cached full CRL that speaks for a certificate.
type source struct {
	m        *crlcache.Meta // read only (crlcache.Result.Meta)
	reasons  crl.Reason
	indirect bool // issued by another CA than the certificate's issuer
}

// sources returns the cached full CRLs whose scope covers cert, with the
// reasons each covers; skipped tells whether some CRL of a candidate
// issuer was out of scope.
func (c *Checker) sources(cert *certinfo.Info) (out []source, skipped bool) {
	type cand struct {
		hash string
		dp   *crl.DistributionPoint
	}
	var cands []cand
	for i := range cert.DistributionPoints {
		dp := &cert.DistributionPoints[i]
		if dp.CRLIssuer == nil {
			cands = append(cands, cand{cert.IssuerHash, dp})
			continue
		}
		for _, g := range dp.CRLIssuer {
			if g.Tag == 4 {
				cands = append(cands, cand{certid.Hash(g.DN), dp})
			}
		}
	}
	if len(cert.DistributionPoints) == 0 {
		cands = append(cands, cand{cert.IssuerHash, nil})
	}
	index := map[string]int{}
	for _, cd := range cands {
		for _, m := range c.slotsOf(cd.hash) {
			if m.Delta {
				continue
			}
			r, ok, why := inScope(cert, m, cd.dp)
			if !ok {
				c.log.Info("CRL out of scope for the certificate", "crl", m.ID().Key(), "issuer", m.Issuer, "why", why)
				skipped = true
				continue
			}
			key := m.ID().Key()
			if i, seen := index[key]; seen {
				out[i].reasons |= r
				continue
			}
			index[key] = len(out)
			out = append(out, source{m: &m, reasons: r, indirect: cd.hash != cert.IssuerHash})
		}
	}
	return out, skipped
}

// inScope decides whether CRL m covers cert through distribution point dp
// (nil: the certificate has none) and for which reasons.
func inScope(cert *certinfo.Info, m crlcache.Meta, dp *crl.DistributionPoint) (crl.Reason, bool, string) {
	var idp *crl.IDP
	if m.IDP != nil {
		var err error
		if idp, err = crl.ParseIDP(m.IDP); err != nil {
			return 0, false, "unreadable issuingDistributionPoint"
		}
	}
	indirect := dp != nil && dp.CRLIssuer != nil
	if indirect && (idp == nil || !idp.Indirect) {
		return 0, false, "the certificate's cRLIssuer names a CRL that is not indirect"
	}
	reasons := idp.Reasons()
	if dp != nil && dp.Reasons != 0 {
		reasons &= dp.Reasons
	}
	if idp == nil {
		return reasons, true, ""
	}
	switch {
	case idp.OnlyAttribute:
		return 0, false, "CRL only for attribute certificates"
	case idp.OnlyUser && cert.IsCA:
		return 0, false, "CRL only for end-entity certificates"
	case idp.OnlyCA && !cert.IsCA:
		return 0, false, "CRL only for CA certificates"
	}
	if idp.Name == nil {
		return reasons, true, ""
	}
	if dp == nil {
		return 0, false, "the CRL is a partition and the certificate names no distribution point"
	}
	idpNames, err := idp.Name.Resolve(m.IssuerDER)
	if err != nil {
		return 0, false, "unreadable issuingDistributionPoint name"
	}
	var dpNames []crl.GeneralName
	if dp.Name != nil {
		base := cert.RawIssuer
		if indirect {
			base = m.IssuerDER
		}
		if dpNames, err = dp.Name.Resolve(base); err != nil {
			return 0, false, "unreadable distribution point name"
		}
	} else {
		dpNames = dp.CRLIssuer
	}
	for _, a := range idpNames {
		for _, b := range dpNames {
			if a.Equal(b) {
				return reasons, true, ""
			}
		}
	}
	return 0, false, "distribution point names differ"
}

// maxSignerDepth bounds the recursion through CRL signers.
const maxSignerDepth = 8

// CheckInfo decides cert's status from the cached CRLs (RFC 5280 §6.3):
// Revoked when a CRL in scope (or its delta) lists it or the CRL's
// separate signer is revoked; Valid only when the CRLs consulted cover
// every reason and each has its delta CRL when one is named; CantUse
// when CRLs are cached but say too little; DontKnow when none is cached.
func (c *Checker) CheckInfo(ctx context.Context, req *Request, cert *certinfo.Info) (Status, error) {
	return c.checkInfo(ctx, orEmpty(req), cert, nil)
}

func (c *Checker) checkInfo(ctx context.Context, req *Request, cert *certinfo.Info, visiting []string) (Status, error) {
	if len(visiting) > maxSignerDepth {
		return CantUse, nil
	}
	srcs, skipped := c.sources(cert)
	var covered crl.Reason
	unusable := false
	for _, s := range srcs {
		st, err := c.consult(ctx, req, cert, s, visiting)
		if err != nil {
			return DontKnow, err
		}
		switch st {
		case Revoked:
			return Revoked, nil
		case Valid:
			covered |= s.reasons
		default:
			unusable = true
		}
	}
	switch {
	case len(srcs) > 0 && covered&crl.AllReasons == crl.AllReasons:
		return Valid, nil
	case len(srcs) > 0 || skipped || unusable:
		if len(srcs) > 0 {
			c.log.Info("the CRLs available do not cover every revocation reason", "covered", covered)
		}
		return CantUse, nil
	}
	return DontKnow, nil
}

// usable reports whether a cached CRL may be consulted now.
func (c *Checker) usable(ctx context.Context, req *Request, m crlcache.Meta) bool {
	if m.Flags != 0 || c.expired(&m, c.cfg.Now()) {
		return false
	}
	if m.TrustFpr != "" && (req.Asker == nil || !req.Asker.IsTrusted(ctx, m.TrustFpr)) {
		c.log.Info("CRL issuer root not trusted by the client", "fpr", m.TrustFpr)
		return false
	}
	return true
}

// consult asks one full CRL (and its delta) about cert.
func (c *Checker) consult(ctx context.Context, req *Request, cert *certinfo.Info, s source, visiting []string) (Status, error) {
	if !c.usable(ctx, req, *s.m) {
		return CantUse, nil
	}
	needDelta := s.m.Freshest || len(cert.Freshest) > 0
	haveDelta := false
	if needDelta {
		did := s.m.ID()
		did.Delta = true
		d, ok := c.cache.GetID(did)
		switch {
		case !ok:
			c.log.Info("delta CRL not available", "base", s.m.ID().Key())
		case !c.usable(ctx, req, d):
			c.log.Info("delta CRL not usable", "delta", did.Key())
		case !deltaApplies(*s.m, d):
			c.log.Info("delta CRL does not apply to the cached base CRL", "base_number", s.m.Number, "delta_base", d.BaseNumber, "delta_number", d.Number)
		default:
			res, ok, err := c.cache.LookupIn(did, cert.IssuerHash, cert.Serial)
			if err != nil {
				return DontKnow, err
			}
			if ok && deltaApplies(*s.m, *res.Meta) {
				haveDelta = true
				if res.Revoked {
					if res.Entry.Reason&uint16(crl.ReasonRemoveFromCRL) == 0 {
						return Revoked, nil
					}
					// removeFromCRL: no longer revoked (a hold was lifted).
					return c.signerOK(ctx, req, s, cert, visiting)
				}
			}
		}
	}
	res, ok, err := c.cache.LookupIn(s.m.ID(), cert.IssuerHash, cert.Serial)
	if err != nil {
		return DontKnow, err
	}
	if !ok {
		return DontKnow, nil
	}
	e, revoked := res.Entry, res.Revoked
	if revoked && e.Reason&uint16(crl.ReasonRemoveFromCRL) == 0 {
		return Revoked, nil
	}
	if needDelta && !haveDelta {
		// A certificate revoked since the base was issued is only on the
		// delta: without it the answer is never "valid".
		return CantUse, nil
	}
	return c.signerOK(ctx, req, s, cert, visiting)
}

// deltaApplies: a delta CRL applies to a base whose CRL number is at
// least the delta's BaseCRLNumber, and must be newer than that base.
func deltaApplies(base, delta crlcache.Meta) bool {
	bn, ok1 := new(big.Int).SetString(base.Number, 16)
	dbase, ok2 := new(big.Int).SetString(delta.BaseNumber, 16)
	dn, ok3 := new(big.Int).SetString(delta.Number, 16)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	return bn.Cmp(dbase) >= 0 && dn.Cmp(bn) > 0
}

// signerOK checks the revocation status of the CRL's signer when it is a
// separate certificate (a CRL-signing key that cannot issue certificates,
// or the issuer of an indirect CRL): Valid when it is not revoked. When
// no cached CRL covers the signer, its CRL is fetched first.
func (c *Checker) signerOK(ctx context.Context, req *Request, s source, cert *certinfo.Info, visiting []string) (Status, error) {
	if len(s.m.Signer) == 0 {
		return Valid, nil
	}
	signer, err := c.signers.parse(s.m.Signer)
	if err != nil {
		return CantUse, nil
	}
	separate := s.indirect || (signer.KeyUsage != 0 && signer.KeyUsage&certSignBit == 0)
	if !separate || string(signer.Raw) == string(cert.Raw) {
		return Valid, nil
	}
	for _, k := range visiting {
		if k == s.m.ID().Key() {
			// The CRL speaks for its own signer (PKITS 4.14.30).
			return Valid, nil
		}
	}
	next := append(visiting, s.m.ID().Key())
	st, err := c.checkInfo(ctx, req, signer, next)
	if err == nil && st == DontKnow {
		// No cached CRL speaks for the signer: fetch its issuer's CRL
		// from the signer's distribution points, as for a certificate
		// checked itself. A failed fetch leaves its status unknown, and
		// is not tried again for signerMissTTL.
		now := c.cfg.Now()
		if c.misses.recent(string(signer.Raw), now) {
			c.log.Debug("the CRL's signer's CRL could not be fetched lately; not trying again yet", "crl", s.m.ID().Key(), "signer", signer.Subject)
		} else if ferr := c.reloadFor(ctx, req, signer); ferr != nil {
			if ctx.Err() == nil { // not the client going away
				c.misses.note(string(signer.Raw), now)
			}
			c.log.Info("cannot fetch a CRL for the CRL's signer", "crl", s.m.ID().Key(), "signer", signer.Subject, "err", ferr, "retry_after", signerMissTTL.String())
		} else {
			st, err = c.checkInfo(ctx, req, signer, next)
		}
	}
	if err != nil {
		return DontKnow, err
	}
	switch st {
	case Valid:
		return Valid, nil
	case Revoked:
		c.log.Info("the CRL's signer certificate is revoked", "crl", s.m.ID().Key(), "signer", signer.Subject)
		return Revoked, nil
	}
	c.log.Info("revocation status of the CRL's signer unknown", "crl", s.m.ID().Key(), "signer", signer.Subject)
	return CantUse, nil
}

// certSignBit is keyUsage keyCertSign (x509.KeyUsageCertSign).
const certSignBit = 1 << 5

// checkRFC5280 refuses CRLs whose RFC 5280 extensions contradict each
// other.
func checkRFC5280(info *crl.Info) error {
	indirect := info.IDP != nil && info.IDP.Indirect
	switch {
	case info.IndirectEntries > 0 && !indirect:
		return fmt.Errorf("revocation: certificateIssuer entries in a CRL that is not indirect: %w", gpgerr.ErrInvCRL)
	case info.IsDelta() && info.Number == nil:
		return fmt.Errorf("revocation: delta CRL without a CRL number: %w", gpgerr.ErrInvCRL)
	case info.IsDelta() && info.Number.Cmp(info.DeltaBase) <= 0:
		return fmt.Errorf("revocation: delta CRL numbered %s for base %s: %w", info.NumberHex(), info.BaseNumberHex(), gpgerr.ErrInvCRL)
	}
	return nil
}

// recheck decides cert's status once the certificate is known (after
// SENDCERT or TARGETCERT): from the cached CRLs, after fetching its CRLs
// first when reload is set; a CRL set that cannot tell and a certificate
// naming delta CRLs gets one fetch of those deltas.
func (c *Checker) recheck(ctx context.Context, req *Request, cert *certinfo.Info, reload bool) (Status, error) {
	if reload && len(c.slotsOf(cert.IssuerHash)) == 0 {
		// Nothing of the issuer's own is cached, but an indirect CRL
		// of another issuer may speak for the certificate: look first.
		reload = false
	}
	if !reload {
		st, err := c.checkInfo(ctx, req, cert, nil)
		switch {
		case err != nil:
			return st, err
		case st == CantUse && c.namesDeltas(cert):
			c.fetchFreshest(ctx, req, cert)
			return c.checkInfo(ctx, req, cert, nil)
		case st != DontKnow:
			return st, nil
		}
	}
	if err := c.reloadFor(ctx, req, cert); err != nil {
		return DontKnow, err
	}
	c.fetchFreshest(ctx, req, cert)
	return c.checkInfo(ctx, req, cert, nil)
}

// fetchFreshest fetches the delta CRLs named by cert (freshestCRL) and by
// the cached CRLs that speak for it; failures are logged, not returned: a
// missing delta makes the answer "can't tell".
func (c *Checker) fetchFreshest(ctx context.Context, req *Request, cert *certinfo.Info) {
	urls := certinfo.URIs(cert.Freshest)
	srcs, _ := c.sources(cert)
	for _, s := range srcs {
		urls = append(urls, s.m.FreshestURLs...)
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if seen[u] || !hasScheme(u, "http", "https", "ldap", "ldaps") {
			continue
		}
		seen[u] = true
		if err := c.Fetch(ctx, req, u); err != nil {
			c.log.Info("fetching the delta CRL failed", "url", u, "err", err)
		}
	}
}

// namesDeltas reports whether cert or a cached CRL speaking for it names
// delta CRLs to fetch.
func (c *Checker) namesDeltas(cert *certinfo.Info) bool {
	if len(certinfo.URIs(cert.Freshest)) > 0 {
		return true
	}
	srcs, _ := c.sources(cert)
	for _, s := range srcs {
		if len(s.m.FreshestURLs) > 0 {
			return true
		}
	}
	return false
}
