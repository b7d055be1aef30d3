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
// (random order) for 1000 certificate IDs, half of them listed, with 4 MB
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
	ids := make([][]byte, 1000)
	for i := range ids {
		ids[i] = append([]byte(nil), set.At(i*997)...)
		if i%2 == 1 {
			ids[i][len(ids[i])-1] ^= 0x5a // probably absent
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
		if _, _, err := c.CheckPlain(hashA, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t)
		n++
	}
	thrashSink = thrash[0]
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "lookup-ns")
}
