package crlcache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// Get returns a copy of the Meta of issuerHash's base CRL.
func (c *Cache) Get(issuerHash string) (Meta, bool) { return c.GetID(BaseID(issuerHash)) }

// GetID returns a copy of the Meta of one CRL slot.
func (c *Cache) GetID(id CRLID) (Meta, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.slots[id.Key()]
	if s == nil {
		return Meta{}, false
	}
	return s.meta, true
}

// List returns copies of all Metas sorted by slot key (issuer hash
// first).
func (c *Cache) List() []Meta {
	c.mu.RLock()
	out := make([]Meta, 0, len(c.slots))
	for _, s := range c.slots {
		out = append(out, s.meta)
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(a.ID().Key(), b.ID().Key()) })
	return out
}

// CRLsFor returns the Metas of every CRL that can speak for certificates
// issued by certIssuerHash: the issuer's own slots (every scope, base and
// delta) and indirect CRLs of other issuers that list entries for it,
// sorted by slot key.
func (c *Cache) CRLsFor(certIssuerHash string) []Meta {
	var out []Meta
	c.mu.RLock()
	for _, k := range c.own[certIssuerHash] {
		if s := c.slots[k]; s != nil {
			out = append(out, s.meta)
		}
	}
	for _, k := range c.indirect[certIssuerHash] {
		if s := c.slots[k]; s != nil && s.meta.IssuerHash != certIssuerHash {
			out = append(out, s.meta)
		}
	}
	c.mu.RUnlock()
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(a.ID().Key(), b.ID().Key()) })
	return out
}

// Lookup reports whether serial (DER content octets) is listed in the base
// CRL cached for issuerHash. ok is false when no CRL is cached.
func (c *Cache) Lookup(issuerHash string, serial []byte) (e Entry, revoked, ok bool, err error) {
	r, ok, err := c.Check(issuerHash, serial)
	return r.Entry, r.Revoked, ok, err
}

// Check looks serial up in issuerHash's base CRL and returns the CRL's
// Meta with the answer, both from one snapshot. ok is false when no CRL
// is cached (or its entries were found damaged and dropped).
func (c *Cache) Check(issuerHash string, serial []byte) (Result, bool, error) {
	return c.LookupIn(BaseID(issuerHash), issuerHash, serial)
}

// LookupIn looks up the certificate (certIssuerHash, serial) in the CRL
// slot id. certIssuerHash differs from id.Issuer for an indirect CRL.
func (c *Cache) LookupIn(id CRLID, certIssuerHash string, serial []byte) (Result, bool, error) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	var ci []byte
	if certIssuerHash != id.Issuer {
		raw, err := hex.AppendDecode(sc.tmp[:0], []byte(certIssuerHash))
		if err != nil || len(raw) != 20 {
			return Result{}, false, fmt.Errorf("crlcache: bad certificate issuer hash %q: %w", certIssuerHash, gpgerr.ErrInvArg)
		}
		ci = raw
	}
	sc.key = appendKey(sc.key[:0], ci, serial)
	key := id.Key()
	c.mu.RLock()
	s := c.slots[key]
	if s == nil {
		c.mu.RUnlock()
		return Result{}, false, nil
	}
	return c.lookupSlot(key, s, sc)
}

// IssuerCRLs tells what an issuer's own cached CRLs are (CheckPlain).
type IssuerCRLs int

// What CheckPlain found cached for an issuer.
const (
	NoCRL     IssuerCRLs = iota // none of its own
	PlainCRL                    // one full CRL without scope, delta or freshestCRL: looked up
	ScopedCRL                   // anything else: the certificate decides
)

// CheckPlain is Check for the common case of an issuer with one plain
// full CRL (no scope, no delta, no freshestCRL), from one snapshot: it
// looks serial up only then and otherwise reports what is cached. It
// neither allocates nor does work proportional to the number of cached
// CRLs.
func (c *Cache) CheckPlain(issuerHash string, serial []byte) (Result, IssuerCRLs, error) {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.key = appendKey(sc.key[:0], nil, serial)
	c.mu.RLock()
	s := c.plain[issuerHash]
	if s == nil {
		kind := NoCRL
		if len(c.own[issuerHash]) > 0 {
			kind = ScopedCRL
		}
		c.mu.RUnlock()
		return Result{}, kind, nil
	}
	res, ok, err := c.lookupSlot(issuerHash, s, sc)
	if !ok {
		return res, NoCRL, err
	}
	return res, PlainCRL, err
}

// lookupSlot looks sc.key up in slot s (key); c.mu is read-locked and is
// released.
func (c *Cache) lookupSlot(key string, s *slot, sc *scratch) (Result, bool, error) {
	res := Result{Meta: &s.meta}
	g := s.g
	g.refs.Add(1)
	c.mu.RUnlock()
	reason, at, found, err := g.lookup(sc.key, sc)
	g.release()
	if err != nil {
		c.dropDamaged(key, g, err)
		return Result{}, false, nil
	}
	if found {
		res.Revoked = true
		res.Entry = Entry{Reason: reason, RevokedAt: time.Unix(at, 0).UTC()}
	}
	return res, true, nil
}

// ForEach calls fn for every entry of issuerHash's base CRL, in serial
// order.
func (c *Cache) ForEach(issuerHash string, fn func(serial []byte, e Entry) error) error {
	return c.ForEachID(BaseID(issuerHash), func(_ string, serial []byte, e Entry) error { return fn(serial, e) })
}

// ForEachID calls fn for every entry of one CRL slot in key order: the
// CRL issuer's own certificates first (certIssuerHash is id.Issuer), then
// indirect entries by certificate issuer.
func (c *Cache) ForEachID(id CRLID, fn func(certIssuerHash string, serial []byte, e Entry) error) error {
	key := id.Key()
	c.mu.RLock()
	s := c.slots[key]
	var g *genFile
	if s != nil {
		g = s.g
		g.refs.Add(1)
	}
	c.mu.RUnlock()
	if g == nil {
		return nil
	}
	defer g.release()
	var lastCI []byte
	ciHex := id.Issuer
	var ferr error
	err := g.each(func(k []byte, r uint16, at int64) error {
		ci, serial := splitKey(k)
		if ci != nil && string(ci) != string(lastCI) {
			lastCI = append(lastCI[:0], ci...)
			ciHex = upperHex(ci)
		}
		if err := fn(ciHex, serial, Entry{Reason: r, RevokedAt: time.Unix(at, 0).UTC()}); err != nil {
			ferr = err
			return err
		}
		return nil
	})
	if err != nil && ferr == nil {
		c.dropDamaged(key, g, err)
		return fmt.Errorf("crlcache: entries of %s are damaged and were dropped: %w", key, err)
	}
	return err
}

// dropDamaged removes a CRL whose entry file failed a read or checksum:
// it is refetched on next use instead of failing every request.
func (c *Cache) dropDamaged(key string, g *genFile, cause error) {
	if c.readOnly || errors.Is(cause, os.ErrClosed) {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	s := c.slots[key]
	c.mu.RUnlock()
	if s == nil || s.g != g {
		return // already replaced
	}
	DamageHook("dropping a CRL whose entries are damaged (refetched on next use)", g.path, cause)
	c.removeSlot(key)
}
