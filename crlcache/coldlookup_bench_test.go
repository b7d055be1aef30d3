package crlcache_test

import (
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// thrashSink keeps the cache-thrashing writes of BenchmarkLookupCold.
var thrashSink byte

// BenchmarkLookupCold: CheckPlain on a 1M-entry CRL of real-world serials
// (random order) for 1000 certificate IDs, all listed ("listed") or none
// ("absent", the common case of a certificate in good standing), with 4 MB
// of memory written between two lookups, as the daemon's lookups run
// after the kernel's socket code has evicted their data and address
// translations. lookup-ns is the lookup alone (BenchmarkLookup is the
// warm case).
func BenchmarkLookupCold(b *testing.B) {
	c, err := crlcache.Open(b.TempDir(), crlcache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	set := testpki.RealSerials(1_000_000, 7, testpki.RevocationOrder)
	st, _ := c.Begin()
	for i := range set.Len() {
		if err := st.Add(set.At(i), 2, time.Unix(1700000000+int64(i), 0)); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "02", ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, crlcache.CommitOptions{}); err != nil {
		b.Fatal(err)
	}
	for _, listed := range []bool{true, false} {
		name := map[bool]string{true: "listed", false: "absent"}[listed]
		b.Run(name, func(b *testing.B) { lookupCold(b, c, set, listed) })
	}
}

func lookupCold(b *testing.B, c *crlcache.Cache, set *testpki.Serials, listed bool) {
	ids := make([][]byte, 1000)
	for i := range ids {
		ids[i] = append([]byte(nil), set.At(i*997)...)
		if !listed {
			ids[i] = append(ids[i], 0x5a) // longer than any listed serial
		}
	}
	thrash := make([]byte, 4<<20)
	var total time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		for j := 0; j < len(thrash); j += 64 {
			thrash[j]++
		}
		t := time.Now()
		r, _, err := c.CheckPlain(hashA, ids[i%len(ids)])
		if err != nil {
			b.Fatal(err)
		}
		if r.Revoked != listed {
			b.Fatalf("serial %X: revoked %v, want %v", ids[i%len(ids)], r.Revoked, listed)
		}
		total += time.Since(t)
		n++
	}
	thrashSink = thrash[0]
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "lookup-ns")
}
