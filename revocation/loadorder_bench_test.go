package revocation_test

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/revocation"
)

// BenchmarkLoadOrder times the whole load path of a CRL (parse, signature,
// hashing, external sort, generation file, switch) in process, on CRLs
// shaped as CAs issue them (testpki.RealSerials: random 16/20-byte serials)
// listed in revocation order (unsorted), sorted and reversed: the loads of
// the three orders should cost about the same. BENCH_LOAD_N sets the
// entries (default 1M).
func BenchmarkLoadOrder(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_LOAD_N")); err == nil && v > 0 {
		n = v
	}
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Order CA", "", "")})
	t0 := time.Now().Add(-time.Duration(n+3600) * time.Second)
	for _, order := range []testpki.Order{testpki.RevocationOrder, testpki.SortedOrder, testpki.ReverseOrder} {
		b.Run(fmt.Sprintf("n=%d/%s", n, order), func(b *testing.B) {
			set := testpki.RealSerials(n, 42, order)
			der := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour), Count: n,
				Gen: func(i int) testpki.Entry { return set.Entry(i, t0) }}).Build()
			b.SetBytes(int64(len(der)))
			b.ResetTimer()
			for range b.N {
				cache, err := crlcache.Open(b.TempDir(), crlcache.Options{})
				if err != nil {
					b.Fatal(err)
				}
				store := certstore.New()
				store.Add(ca.Cert, certstore.Trusted)
				chk := revocation.New(revocation.Config{}, revocation.Parts{Cache: cache, Certs: store})
				if _, err := chk.Load(context.Background(), nil, bytes.NewReader(der), "mem", fetch.Validators{}); err != nil {
					b.Fatal(err)
				}
				cache.Close()
			}
		})
	}
}
