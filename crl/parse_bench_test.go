package crl_test

import (
	"bytes"
	"math/big"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// BenchmarkParse measures the streaming parse (with TBS hashing) of a CRL
// of 200,000 entries in revocation (random serial) order.
func BenchmarkParse(b *testing.B) {
	const n = 200000
	root := newCA(testpki.ECDSA)
	t0 := time.Now().Add(-time.Duration(n+3600) * time.Second)
	set := testpki.RealSerials(n, 42, testpki.RevocationOrder)
	spec := &testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour), Count: n,
		Gen: func(i int) testpki.Entry { return set.Entry(i, t0) }}
	der := spec.Build()
	b.SetBytes(int64(len(der)))
	b.ResetTimer()
	for range b.N {
		count := 0
		info, err := crl.Parse(bytes.NewReader(der), crl.Limits{}, func(*crl.Entry) error { count++; return nil })
		if err != nil {
			b.Fatal(err)
		}
		if count != n || info.Entries != n {
			b.Fatalf("parsed %d entries, want %d", count, n)
		}
	}
}
