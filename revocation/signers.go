package revocation

import (
	"sync"

	"github.com/dirmngr/dirmngr/certinfo"
)

// maxSigners bounds the parsed signer certificates kept; when full the
// set starts over (the CRLs of a daemon have few distinct signers).
const maxSigners = 256

// signerCache keeps the parsed signer certificates of cached CRLs
// (crlcache.Meta.Signer), so that a check does not parse the same DER on
// every request. Entries are read only once stored.
type signerCache struct {
	mu sync.RWMutex
	m  map[string]*certinfo.Info // by DER
}

// parse returns der parsed, from the cache when it was parsed before.
func (sc *signerCache) parse(der []byte) (*certinfo.Info, error) {
	sc.mu.RLock()
	in := sc.m[string(der)]
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
		sc.m = map[string]*certinfo.Info{}
	}
	sc.m[string(der)] = in
	sc.mu.Unlock()
	return in, nil
}
