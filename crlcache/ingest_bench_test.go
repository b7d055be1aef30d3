package crlcache_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
)

// realSerials returns n distinct serials shaped like real CAs' (random 16
// bytes, a leading zero byte when the high bit is set, some 20 bytes), in
// the given order: "random" (revocation order), "sorted" or "reverse".
func realSerials(n int, order string, seed uint64) [][]byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]byte, 0, n)
	for range n {
		l := 16
		if rng.IntN(10) == 0 {
			l = 20
		}
		s := make([]byte, l)
		for i := range s {
			s[i] = byte(rng.Uint32())
		}
		s[0] &= 0x7f
		if rng.IntN(2) == 0 {
			s[0] |= 0x80
			s = append([]byte{0}, s...)
		}
		if s[0] == 0 && len(s) > 1 && s[1] < 0x80 {
			s[0] = 1
		}
		out = append(out, s)
	}
	switch order {
	case "sorted":
		slices.SortFunc(out, bytes.Compare)
	case "reverse":
		slices.SortFunc(out, func(a, b []byte) int { return bytes.Compare(b, a) })
	}
	return out
}

// peakHeap samples the Go heap while fn runs and returns the peak.
func peakHeap(fn func()) uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if v := ms.HeapInuse; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

// BenchmarkIngestOrder stages and commits CRLs of real-world-shaped
// serials in three orders and reports the peak Go heap during the
// ingest; it fails when the heap grows beyond a bound independent of the
// CRL size (bounded memory by design).
func BenchmarkIngestOrder(b *testing.B) {
	for _, n := range []int{1_000_000} {
		for _, order := range []string{"random", "sorted", "reverse"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, order), func(b *testing.B) {
				serials := realSerials(n, order, 7)
				runtime.GC()
				var base runtime.MemStats
				runtime.ReadMemStats(&base)
				at := time.Unix(1_600_000_000, 0)
				var peak uint64
				for range b.N {
					c, err := crlcache.Open(b.TempDir(), crlcache.Options{})
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, peakHeap(func() {
						st, _ := c.Begin()
						for i, s := range serials {
							if err := st.Add(s, 2, at.Add(time.Duration(i)*time.Second)); err != nil {
								b.Fatal(err)
							}
						}
						if err := st.Commit(crlcache.Meta{IssuerHash: hashA}, crlcache.CommitOptions{}); err != nil {
							b.Fatal(err)
						}
					}))
					c.Close()
				}
				grow := float64(peak-min(peak, base.HeapInuse)) / 1e6
				b.ReportMetric(grow, "heap-MB")
				if grow > 48 {
					b.Fatalf("ingest heap grew by %.1f MB (bound 48 MB)", grow)
				}
			})
		}
	}
}
