package crlcache_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

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
// serials (testpki.RealSerials) in three orders, 1M and 3M entries, and
// reports the peak Go heap during the ingest; it fails when the heap
// grows beyond a bound independent of the CRL size (bounded memory by
// design; the daemon's whole RSS is measured by integration's
// BenchmarkCompareGnuPG).
func BenchmarkIngestOrder(b *testing.B) {
	for _, n := range []int{1_000_000, 3_000_000} {
		for _, order := range []testpki.Order{testpki.RevocationOrder, testpki.SortedOrder, testpki.ReverseOrder} {
			b.Run(fmt.Sprintf("n=%d/%s", n, order), func(b *testing.B) {
				set := testpki.RealSerials(n, 7, order)
				at := time.Unix(1_600_000_000, 0)
				var grow float64
				b.ResetTimer()
				for range b.N {
					// Each ingest is measured from the heap it starts
					// with: an earlier iteration's garbage is not its own.
					b.StopTimer()
					runtime.GC()
					var base runtime.MemStats
					runtime.ReadMemStats(&base)
					b.StartTimer()
					c, err := crlcache.Open(b.TempDir(), crlcache.Options{})
					if err != nil {
						b.Fatal(err)
					}
					peak := peakHeap(func() {
						st, _ := c.Begin()
						for i := range set.Len() {
							if err := st.Add(set.At(i), 2, at.Add(time.Duration(i)*time.Second)); err != nil {
								b.Fatal(err)
							}
						}
						if err := st.Commit(crlcache.Meta{IssuerHash: hashA}, crlcache.CommitOptions{}); err != nil {
							b.Fatal(err)
						}
					})
					c.Close()
					grow = max(grow, float64(peak-min(peak, base.HeapInuse))/1e6)
				}
				b.ReportMetric(grow, "heap-MB")
				// The sort buffers (~6 MB) are off the Go heap; what remains
				// is the merge's read buffers, samples and writers.
				if grow > 16 {
					b.Fatalf("ingest heap grew by %.1f MB (bound 16 MB)", grow)
				}
			})
		}
	}
}
