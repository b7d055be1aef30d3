package crlcache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
)

// TestCheckPlain: CheckPlain looks up only an issuer whose one CRL is a
// plain full CRL; scoped, delta or freshestCRL-carrying sets are reported
// as such, and other issuers' CRLs do not matter.
func TestCheckPlain(t *testing.T) {
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put := func(m crlcache.Meta, serials ...int) {
		t.Helper()
		st, err := c.Begin()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range serials {
			if err := st.Add(serial(i), 1, time.Unix(1700000000, 0)); err != nil {
				t.Fatal(err)
			}
		}
		m.ThisUpdate = time.Now()
		if err := st.Commit(m, crlcache.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(issuer string, sn int, want crlcache.IssuerCRLs, revoked bool) {
		t.Helper()
		res, kind, err := c.CheckPlain(issuer, serial(sn))
		if err != nil || kind != want || res.Revoked != revoked {
			t.Errorf("%s %d: kind %d revoked %v err %v, want kind %d revoked %v", issuer[:4], sn, kind, res.Revoked, err, want, revoked)
		}
	}
	check(hashA, 1, crlcache.NoCRL, false)
	// Many other issuers' CRLs.
	for i := range 50 {
		put(crlcache.Meta{IssuerHash: fmt.Sprintf("%040X", i), Number: "01"}, 1, 2)
	}
	check(hashA, 1, crlcache.NoCRL, false)
	put(crlcache.Meta{IssuerHash: hashA, Issuer: "CN=A", Number: "01"}, 1, 3)
	check(hashA, 1, crlcache.PlainCRL, true)
	check(hashA, 2, crlcache.PlainCRL, false)
	if res, _, _ := c.CheckPlain(hashA, serial(3)); res.Meta.Issuer != "CN=A" || res.Entry.Reason != 1 {
		t.Errorf("result %+v", res)
	}
	if !raceEnabled {
		sn := serial(2)
		if n := testing.AllocsPerRun(100, func() { c.CheckPlain(hashA, sn) }); n != 0 {
			t.Errorf("CheckPlain allocates %v times per call", n)
		}
	}
	// A freshestCRL on the base: the certificate decides.
	if err := c.UpdateMeta(crlcache.BaseID(hashA), func(m *crlcache.Meta) { m.Freshest = true }); err != nil {
		t.Fatal(err)
	}
	check(hashA, 1, crlcache.ScopedCRL, false)
	if err := c.UpdateMeta(crlcache.BaseID(hashA), func(m *crlcache.Meta) { m.Freshest = false }); err != nil {
		t.Fatal(err)
	}
	check(hashA, 1, crlcache.PlainCRL, true)
	// A second slot (a partition) of the same issuer.
	put(crlcache.Meta{IssuerHash: hashA, Number: "02", Scope: "AB", IDP: []byte{0x30, 0}}, 5)
	check(hashA, 1, crlcache.ScopedCRL, false)
	if err := c.Drop(crlcache.BaseID(hashA)); err != nil {
		t.Fatal(err)
	}
	check(hashA, 1, crlcache.ScopedCRL, false)
	if err := c.Drop(crlcache.CRLID{Issuer: hashA, Scope: "AB"}); err != nil {
		t.Fatal(err)
	}
	check(hashA, 1, crlcache.NoCRL, false)
	if got := c.CRLsFor(hashA); len(got) != 0 {
		t.Errorf("CRLsFor after drops: %d", len(got))
	}
}
