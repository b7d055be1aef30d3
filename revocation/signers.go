package revocation

import (
	"sync"
	"time"
	"unsafe"

	"github.com/dirmngr/dirmngr/certinfo"
)

// maxSigners bounds the parsed signer certificates kept; when full the
// set starts over (the CRLs of a daemon have few distinct signers).
const maxSigners = 256

// signerCache keeps the parsed signer certificates of cached CRLs
// (crlcache.Meta.Signer), so that a check does not parse the same DER on
// every request. Entries are read only once stored.
//
// It is keyed by the identity of the DER's bytes, not their value: a
// cached CRL's record is read only and shared (crlcache.Result.Meta), so
// the same array always holds the same certificate, and a lookup hashes a
// pointer instead of a certificate of a kilobyte or so: 22 against 48 ns
// warm (BenchmarkSignerCacheHit); the lookup by value was 7% of an
// all-valid ISVALID's handler time in a perf profile of the daemon. A new
// CRL's record brings a new array and parses once more.
type signerCache struct {
	mu sync.RWMutex
	m  map[derID]*certinfo.Info
}

// derID is the identity of a DER slice: where its bytes are and how many.
type derID struct {
	p *byte
	n int
}

// parse returns der parsed, from the cache when the same bytes were
// parsed before. der must not change afterwards.
func (sc *signerCache) parse(der []byte) (*certinfo.Info, error) {
	id := derID{unsafe.SliceData(der), len(der)}
	sc.mu.RLock()
	in := sc.m[id]
	sc.mu.RUnlock()
	if in != nil {
		return in, nil
	}
	in, err := certinfo.Parse(der)
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	if sc.m == nil || len(sc.m) >= maxSigners {
		sc.m = map[derID]*certinfo.Info{}
	}
	sc.m[id] = in
	sc.mu.Unlock()
	return in, nil
}

// signerMissTTL is how long a CRL signer whose issuer's CRL could not be
// fetched is not fetched for again (signerOK): meanwhile the CRLs it
// signed answer "can't use" at once instead of each check waiting for
// the network.
const signerMissTTL = time.Minute

// missCache remembers when a fetch failed, by key (the signer's DER);
// at most maxSigners keys, as signerCache.
type missCache struct {
	mu sync.Mutex
	m  map[string]time.Time
}

// recent reports whether key failed less than signerMissTTL before now.
func (mc *missCache) recent(key string, now time.Time) bool {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	at, ok := mc.m[key]
	if ok && now.Sub(at) >= signerMissTTL {
		delete(mc.m, key)
		return false
	}
	return ok
}

// note records that key failed at now.
func (mc *missCache) note(key string, now time.Time) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.m == nil || len(mc.m) >= maxSigners {
		mc.m = map[string]time.Time{}
	}
	mc.m[key] = now
}
