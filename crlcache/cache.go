// Package crlcache stores CRLs in one bbolt database, <homedir>/crls.d/crls.db.
//
// Layout (bucket → key → value):
//
//	"meta"        issuer hash (40 hex) → JSON Meta, one per CRL issuer
//	"entries"     generation (8 bytes BE) → bucket: largest serial of a
//	              block → block of up to 128 sorted entries (see block.go)
//	"info"        "version" → "1"; "nextgen" → last generation used
//	"ocsp"        SHA-1 CertID (name hash, key hash, serial) → JSON verified answer
//
// A CRL is ingested into a fresh generation bucket in batched
// transactions (the staging area), then one small transaction points the
// issuer's Meta at it. Readers therefore see the old or the new CRL, never
// a mix, and a crash (even kill -9) mid-ingest leaves the previous CRL in
// service: unreferenced generations are removed when the cache is opened.
// A lookup is a read-only transaction with one seek into the issuer's
// generation bucket and a binary search in the block found.
package crlcache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	bucketInfo    = []byte("info")
	bucketOCSP    = []byte("ocsp")
	keyNextGen    = []byte("nextgen")
	keyVersion    = []byte("version")
)

// FileName is the database file inside the cache directory.
const FileName = "crls.db"

// State flags of a cached CRL (GnuPG's "i<n>" records).
const (
	FlagTooOld          = 1 // still too old after an update
	FlagUnknownCritical = 2 // unknown critical CRL extension
)

// Meta describes one cached CRL.
type Meta struct {
	IssuerHash  string    `json:"hash"`
	Issuer      string    `json:"issuer"`
	URL         string    `json:"url"`
	ThisUpdate  time.Time `json:"this"`
	NextUpdate  time.Time `json:"next"`
	Number      string    `json:"number,omitempty"` // hex, "" = none
	AKIKeyID    []byte    `json:"aki_keyid,omitempty"`
	AKISerial   []byte    `json:"aki_serial,omitempty"`
	AKIIssuer   []string  `json:"aki_issuer,omitempty"`
	TrustFpr    string    `json:"trust_fpr,omitempty"` // root to confirm with ISTRUSTED; "" = system trusted
	Flags       int       `json:"flags,omitempty"`
	ETag        string    `json:"etag,omitempty"`
	LastMod     string    `json:"last_modified,omitempty"`
	FetchedAt   time.Time `json:"fetched"`
	LastRefresh time.Time `json:"last_refresh"`
	Entries     int64     `json:"entries"`
	Generation  uint64    `json:"gen"`
}

// Options configure Open.
type Options struct {
	// Timeout bounds the wait for the database lock held by another
	// process. Default 1 s.
	Timeout time.Duration
	// ReadOnly opens the database for reading only (shared lock).
	ReadOnly bool
}

// CorruptionHook is told when Open found an unreadable database and moved
// it aside (the daemon logs it). The default does nothing.
var CorruptionHook = func(path, aside string, cause error) {}

// ErrLocked is returned by Open when another process holds the cache.
var ErrLocked = errors.New("crlcache: the CRL cache is in use by another process (is dirmngr running?)")

// Cache is an open CRL cache. It is safe for concurrent use.
type Cache struct {
	db   *bolt.DB
	path string

	mu    sync.RWMutex
	metas map[string]*Meta // in-memory copy of the "meta" bucket
}

// Open opens (creating if needed) the cache in dir, removing generations
// left behind by interrupted ingests.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("crlcache: creating %s: %w", dir, err)
		}
	}
	path := filepath.Join(dir, FileName)
	bopts := &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly, FreelistType: bolt.FreelistMapType}
	db, err := bolt.Open(path, 0o600, bopts)
	if err != nil && !errors.Is(err, bolterrors.ErrTimeout) && !opts.ReadOnly && !errors.Is(err, os.ErrPermission) {
		// A corrupt cache is only a cache: keep it aside for inspection
		// and start empty rather than refusing to run.
		aside := fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr == nil {
			CorruptionHook(path, aside, err)
			db, err = bolt.Open(path, 0o600, bopts)
		}
	}
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("crlcache: opening %s: %w", path, err)
	}
	c := &Cache{db: db, path: path}
	if !opts.ReadOnly {
		if err := c.init(); err != nil {
			db.Close()
			return nil, err
		}
		if err := c.collectGarbage(); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := c.loadMetas(); err != nil {
		db.Close()
		return nil, err
	}
	return c, nil
}

// Path returns the database file name.
func (c *Cache) Path() string { return c.path }

// Close closes the database.
func (c *Cache) Close() error { return c.db.Close() }

func (c *Cache) init() error {
	return c.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketEntries, bucketInfo, bucketOCSP} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("crlcache: creating bucket %s: %w", name, err)
			}
		}
		info := tx.Bucket(bucketInfo)
		if v := info.Get(keyVersion); v == nil {
			return info.Put(keyVersion, []byte("1"))
		} else if string(v) != "1" {
			return fmt.Errorf("crlcache: unsupported cache version %q in %s", v, c.path)
		}
		return nil
	})
}

// collectGarbage deletes generation buckets no Meta references: staging
// areas of interrupted ingests and generations replaced by newer CRLs.
func (c *Cache) collectGarbage() error {
	var stale [][]byte
	err := c.db.View(func(tx *bolt.Tx) error {
		used := map[uint64]bool{}
		if err := tx.Bucket(bucketMeta).ForEach(func(k, v []byte) error {
			var m Meta
			if err := json.Unmarshal(v, &m); err == nil {
				used[m.Generation] = true
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketEntries).ForEach(func(k, v []byte) error {
			if v == nil && len(k) == 8 && !used[binary.BigEndian.Uint64(k)] {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("crlcache: scanning for stale data: %w", err)
	}
	for _, k := range stale {
		if err := c.dropGeneration(k); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) dropGeneration(k []byte) error {
	return c.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketEntries).DeleteBucket(k)
		if err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
			return fmt.Errorf("crlcache: dropping generation %x: %w", k, err)
		}
		return nil
	})
}

func (c *Cache) loadMetas() error {
	metas := map[string]*Meta{}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m := new(Meta)
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("crlcache: corrupt record for %s: %w", k, err)
			}
			metas[string(k)] = m
			return nil
		})
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.metas = metas
	c.mu.Unlock()
	return nil
}

// Reload re-reads the metadata from disk (after another process changed
// the cache, or on SIGHUP).
func (c *Cache) Reload() error { return c.loadMetas() }

// Get returns a copy of the Meta for issuerHash.
func (c *Cache) Get(issuerHash string) (Meta, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m, ok := c.metas[issuerHash]
	if !ok {
		return Meta{}, false
	}
	return *m, true
}

// List returns copies of all Metas sorted by issuer hash.
func (c *Cache) List() []Meta {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Meta, 0, len(c.metas))
	for _, m := range c.metas {
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Meta) int { return bytes.Compare([]byte(a.IssuerHash), []byte(b.IssuerHash)) })
	return out
}

// Entry is a revoked serial as stored.
type Entry struct {
	Reason    uint16
	RevokedAt time.Time
}

func genKey(g uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], g)
	return k[:]
}

// Lookup reports whether serial (DER content octets) is listed in the CRL
// cached for issuerHash. ok is false when no CRL is cached.
func (c *Cache) Lookup(issuerHash string, serial []byte) (e Entry, revoked, ok bool, err error) {
	c.mu.RLock()
	m := c.metas[issuerHash]
	var gen uint64
	if m != nil {
		gen = m.Generation
	}
	c.mu.RUnlock()
	if m == nil {
		return Entry{}, false, false, nil
	}
	var gk [8]byte
	binary.BigEndian.PutUint64(gk[:], gen)
	err = c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket(gk[:])
		if b == nil {
			return fmt.Errorf("crlcache: entries of %s missing", issuerHash)
		}
		k, v := b.Cursor().Seek(serial)
		if k == nil {
			return nil
		}
		var err error
		e, revoked, err = blockFind(v, serial)
		return err
	})
	if err != nil {
		return Entry{}, false, false, err
	}
	return e, revoked, true, nil
}

// ForEach calls fn for every entry of the CRL cached for issuerHash, in
// serial order.
func (c *Cache) ForEach(issuerHash string, fn func(serial []byte, e Entry) error) error {
	m, ok := c.Get(issuerHash)
	if !ok {
		return nil
	}
	return c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket(genKey(m.Generation))
		if b == nil {
			return fmt.Errorf("crlcache: entries of %s missing", issuerHash)
		}
		return b.ForEach(func(k, v []byte) error {
			return blockEach(v, func(serial []byte, r uint16, at int64) error {
				return fn(serial, Entry{Reason: r, RevokedAt: time.Unix(at, 0).UTC()})
			})
		})
	})
}

// Touch records a refresh of issuerHash's CRL (a fetch that found it
// unchanged, or a completed load) and persists it.
func (c *Cache) Touch(issuerHash string, at time.Time) error {
	return c.updateMeta(issuerHash, func(m *Meta) { m.LastRefresh = at })
}

// SetFlags sets the state flags of a cached CRL.
func (c *Cache) SetFlags(issuerHash string, flags int) error {
	return c.updateMeta(issuerHash, func(m *Meta) { m.Flags = flags })
}

func (c *Cache) updateMeta(issuerHash string, fn func(*Meta)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.metas[issuerHash]
	if !ok {
		return nil
	}
	m := *old
	fn(&m)
	v, err := json.Marshal(&m)
	if err != nil {
		return fmt.Errorf("crlcache: encoding record: %w", err)
	}
	if err := c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(issuerHash), v)
	}); err != nil {
		return fmt.Errorf("crlcache: updating %s: %w", issuerHash, err)
	}
	c.metas[issuerHash] = &m
	return nil
}

// Flush removes every cached CRL.
func (c *Cache) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketEntries, bucketOCSP} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("crlcache: flushing: %w", err)
	}
	c.metas = map[string]*Meta{}
	return nil
}

// ErrRollback is wrapped when a CRL older than the cached one is offered.
var ErrRollback = fmt.Errorf("crlcache: CRL is older than the cached one: %w", gpgerr.ErrInvCRL)

// isOlder reports whether m would roll back cur (crl.Version.Older, the
// rollback rule dirmngr and fetch-crl share).
func isOlder(m, cur *Meta) bool {
	return crl.Version{Number: crl.NumberFromHex(m.Number), ThisUpdate: m.ThisUpdate}.
		Older(crl.Version{Number: crl.NumberFromHex(cur.Number), ThisUpdate: cur.ThisUpdate})
}

// GetOCSP returns a cached OCSP answer (see package ocsp).
func (c *Cache) GetOCSP(key []byte) ([]byte, bool) {
	var out []byte
	c.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketOCSP); b != nil {
			if v := b.Get(key); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, out != nil
}

// PutOCSP stores a verified OCSP answer.
func (c *Cache) PutOCSP(key, value []byte) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketOCSP)
		if err != nil {
			return err
		}
		return b.Put(key, value)
	})
	if err != nil {
		return fmt.Errorf("crlcache: storing OCSP answer: %w", err)
	}
	return nil
}
