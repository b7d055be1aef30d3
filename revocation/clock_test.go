package revocation_test

import (
	"bytes"
	"context"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/revocation"
)

// TestClockJumps (threats-and-tests §4.I 60): the wall clock of a running
// checker jumps by ±1 day and ±10 years (the injectable clock that
// --faked-system-time sets). A CRL valid for a day answers while now is
// inside it; once now passes its nextUpdate it is too old ("can't tell",
// never "valid" nor "revoked"), as GnuPG's dirmngr; a jump back makes the
// same cached CRL answer again (nothing was dropped or marked), even ten
// years back (only nextUpdate is checked at lookup, as GnuPG does); a CRL
// whose thisUpdate is in the future is refused at load time.
func TestClockJumps(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Clock CA", "", ""), KeyType: testpki.ECDSA})
	victim := ca.Issue(testpki.Template{Subject: testpki.Name("victim", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	cache, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	store := certstore.New()
	store.Add(ca.Cert, certstore.Trusted)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	chk := revocation.New(revocation.Config{Now: now, Limits: crl.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}},
		revocation.Parts{Cache: cache, Certs: store, Fetch: fetch.New(fetch.Config{DisableHTTP: true})})
	start := time.Now()
	der := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), ThisUpdate: start.Add(-time.Hour), NextUpdate: start.Add(24 * time.Hour),
		Entries: []testpki.Entry{{Serial: victim.Cert.SerialNumber, Reason: 1}}}).Build()
	if _, err := chk.Load(context.Background(), nil, bytes.NewReader(der), "clock", fetch.Validators{}); err != nil {
		t.Fatal(err)
	}
	const day, decade = 24 * time.Hour, 10 * 365 * 24 * time.Hour
	fresh := [2]revocation.Status{revocation.Valid, revocation.Revoked}
	for _, tc := range []struct {
		name string
		skew time.Duration
		want [2]revocation.Status // leaf, victim
	}{
		{"now", 0, fresh},
		{"+1 day", day + time.Hour, [2]revocation.Status{revocation.DontKnow, revocation.DontKnow}},
		{"back", 0, fresh},
		{"+10 years", decade, [2]revocation.Status{revocation.DontKnow, revocation.DontKnow}},
		{"-1 day", -day, fresh},
		{"-10 years", -decade, fresh},
		{"back again", 0, fresh},
	} {
		skew.Store(int64(tc.skew))
		for i, c := range []*testpki.Cert{leaf, victim} {
			st, err := chk.CertStatus(context.Background(), nil, c.Cert)
			if st != tc.want[i] {
				t.Errorf("%s: %s is %v (%v), want %v", tc.name, c.Cert.Subject.CommonName, st, err, tc.want[i])
			}
		}
	}
	// Ten years back, a new CRL issued now is "in the future" and refused;
	// the cached one is kept.
	skew.Store(int64(-decade))
	next := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(2), ThisUpdate: start, NextUpdate: start.Add(day)}).Build()
	if _, err := chk.Load(context.Background(), nil, bytes.NewReader(next), "future", fetch.Validators{}); gpgerr.CodeOf(err) != gpgerr.ErrInvCRL {
		t.Errorf("CRL from the future: %v, want Invalid CRL", err)
	}
	skew.Store(0)
	if st, _ := chk.CertStatus(context.Background(), nil, victim.Cert); st != revocation.Revoked {
		t.Errorf("after the refused load: victim %v", st)
	}
}
