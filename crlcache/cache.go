// Package crlcache stores CRLs in the cache directory <homedir>/crls.d:
// one small bbolt database, crls.db, for metadata and OCSP answers, and
// one immutable file of sorted, prefix-compressed entry blocks per cached
// CRL (crl-<generation>.blk, see genfile.go and block.go).
//
// Database layout (bucket → key → value):
//
//	"crls"  CRLID.Key() → JSON Meta, one per cached CRL (an issuer may
//	        have several: base, delta, one per distribution point)
//	"info"  "version" → "2"; "nextgen" → last generation used
//	"ocsp"  SHA-1 CertID (name hash, key hash, serial) → JSON verified answer
//
// A CRL is ingested with an external sort (Staging) into a new generation
// file, then one small transaction points the CRL's slot at it. Readers
// see the old or the new CRL, never a mix; a crash (even kill -9) leaves
// the previous CRL in service, and files no Meta references are removed
// when the cache is opened. A lookup takes the slot's Meta and open
// generation from memory, binary-searches the in-memory block index and
// reads one block.
//
// The cache heals itself: a damaged database is moved aside at open (or
// when a fault is met later) and rebuilt, a damaged generation file drops
// only its CRL (refetched on next use), and an unusable cache directory
// makes the cache run in a temporary directory instead of failing.
package crlcache

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	bucketCRLs    = []byte("crls")
	bucketInfo    = []byte("info")
	bucketOCSP    = []byte("ocsp")
	keyNextGen    = []byte("nextgen")
	keyVersion    = []byte("version")
	layoutVersion = []byte("2")
)

// FileName is the database file inside the cache directory.
const FileName = "crls.db"

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

// DamageHook is told of every other repair: a damaged CRL file dropped, a
// database rebuilt at run time, a cache directory that cannot be used (the
// cache then runs in a temporary directory), a migration (cause nil). The
// default logs with slog.Default(): an error, or a warning without cause.
var DamageHook = func(what, path string, cause error) {
	if cause == nil {
		slog.Default().Warn("CRL cache: "+what, "file", path)
		return
	}
	slog.Default().Error("CRL cache: "+what, "file", path, "err", cause)
}

// ErrLocked is returned by Open when another process holds the cache.
var ErrLocked = errors.New("crlcache: the CRL cache is in use by another process (is dirmngr running?)")

// slot is one cached CRL: its Meta and open generation file.
type slot struct {
	meta Meta
	g    *genFile
}

// Cache is an open CRL cache. It is safe for concurrent use.
type Cache struct {
	dir      string
	path     string
	readOnly bool
	bopts    *bolt.Options
	tempDir  string // set when running on a temporary cache

	dbmu sync.RWMutex // guards db, which a repair replaces
	db   *bolt.DB

	wmu sync.Mutex // serializes writers (commit, meta updates, flush)

	mu       sync.RWMutex
	slots    map[string]*slot    // by CRLID.Key()
	indirect map[string][]string // certificate issuer → keys of indirect CRLs
	own      map[string][]string // CRL issuer → keys of its slots, sorted
	plain    map[string]*slot    // CRL issuer → its slot when that is its one CRL, full, without scope or freshestCRL (CheckPlain)
	nextGen  uint64
}

// Open opens (creating if needed) the cache in dir and removes what
// interrupted ingests left behind. A damaged database is moved aside and
// the cache starts empty; a directory or file that cannot be used at all
// (permissions) makes the cache run in a temporary directory, so the
// daemon answers as if nothing were cached instead of failing.
func Open(dir string, opts Options) (*Cache, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	c, err := open(dir, opts)
	if err == nil || opts.ReadOnly || errors.Is(err, ErrLocked) {
		return c, err
	}
	tmp, terr := os.MkdirTemp("", "dirmngr-crls-")
	if terr != nil {
		return nil, fmt.Errorf("%w (and no temporary cache: %v)", err, terr)
	}
	DamageHook("cache unusable; running with a temporary cache that is not kept", filepath.Join(dir, FileName), err)
	c, terr = open(tmp, opts)
	if terr != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("%w (and no temporary cache: %v)", err, terr)
	}
	c.tempDir = tmp
	return c, nil
}

func open(dir string, opts Options) (*Cache, error) {
	if !opts.ReadOnly {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("crlcache: creating %s: %w", dir, err)
		}
	}
	c := &Cache{
		dir: dir, path: filepath.Join(dir, FileName), readOnly: opts.ReadOnly,
		bopts: &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly, FreelistType: bolt.FreelistMapType},
	}
	db, err := c.openChecked()
	if err != nil && !opts.ReadOnly && isDamage(err) {
		// A damaged cache is only a cache: keep it aside for inspection
		// and start empty rather than refusing to run.
		aside := fmt.Sprintf("%s.corrupt-%d", c.path, time.Now().UnixNano())
		if rerr := os.Rename(c.path, aside); rerr == nil {
			CorruptionHook(c.path, aside, err)
			db, err = c.openChecked()
		}
	}
	if err != nil {
		return nil, err
	}
	c.db = db
	if err := c.start(); err != nil {
		c.closeDB()
		return nil, err
	}
	return c, nil
}

// start prepares an open database: layout, migration, slots, garbage.
func (c *Cache) start() error {
	if !c.readOnly {
		if err := c.init(); err != nil {
			return err
		}
	}
	if err := c.loadSlots(); err != nil {
		return err
	}
	if !c.readOnly {
		c.collectGarbage()
		c.maybeCompact()
	}
	return nil
}

// isDamage tells errors of a damaged file from a lock held elsewhere or a
// permission problem.
func isDamage(err error) bool {
	return !errors.Is(err, ErrLocked) && !errors.Is(err, os.ErrPermission) && !errors.Is(err, os.ErrNotExist)
}

// openChecked opens the database and checks it, turning panics and memory
// faults inside bbolt into errors.
func (c *Cache) openChecked() (db *bolt.DB, err error) {
	err = protect(func() error {
		var oerr error
		db, oerr = bolt.Open(c.path, 0o600, c.bopts)
		return oerr
	})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, c.path)
		}
		return nil, fmt.Errorf("crlcache: opening %s: %w", c.path, err)
	}
	if err := checkDB(db, c.path); err != nil {
		protect(db.Close)
		return nil, fmt.Errorf("crlcache: %s is damaged: %w", c.path, err)
	}
	return db, nil
}

// Path returns the database file name.
func (c *Cache) Path() string { return c.path }

// Temporary reports whether the cache runs in a temporary directory
// because its own could not be used (nothing it stores is kept).
func (c *Cache) Temporary() bool { return c.tempDir != "" }

// Close closes the database and the CRL files.
func (c *Cache) Close() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	for _, s := range c.slots {
		s.g.release()
	}
	c.slots, c.indirect, c.own, c.plain = nil, nil, nil, nil
	c.mu.Unlock()
	err := c.closeDB()
	if c.tempDir != "" {
		os.RemoveAll(c.tempDir)
	}
	return err
}

func (c *Cache) closeDB() error {
	c.dbmu.Lock()
	defer c.dbmu.Unlock()
	if c.db == nil {
		return nil
	}
	err := protect(c.db.Close)
	c.db = nil
	return err
}

// Reload re-reads the metadata from disk (after another process changed
// the cache, or on SIGHUP).
func (c *Cache) Reload() error { return c.loadSlots() }

// loadSlots reads every Meta and opens its generation file, reusing the
// files already open. A CRL whose file is missing or damaged is dropped
// (it is refetched on next use).
func (c *Cache) loadSlots() error {
	c.wmu.Lock() // no commit may slip between reading the records and the swap
	defer c.wmu.Unlock()
	metas := map[string]Meta{}
	var bad []string
	var next uint64
	err := c.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketInfo); v != nil {
			next = decodeGen(v.Get(keyNextGen))
		}
		b := tx.Bucket(bucketCRLs)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			m, err := decodeMeta(k, v)
			if err != nil {
				DamageHook("dropping a damaged CRL record", c.path, err)
				bad = append(bad, string(k))
				return nil
			}
			metas[string(k)] = m
			return nil
		})
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	old := c.slots
	c.mu.Unlock()
	slots := map[string]*slot{}
	for k, m := range metas {
		next = max(next, m.Generation)
		if s := old[k]; s != nil && s.meta.Generation == m.Generation {
			s.g.refs.Add(1)
			slots[k] = &slot{meta: m, g: s.g}
			continue
		}
		g, err := openGen(filepath.Join(c.dir, genName(m.Generation)))
		if err != nil {
			DamageHook("dropping a CRL whose entries are unreadable (refetched on next use)", filepath.Join(c.dir, genName(m.Generation)), err)
			bad = append(bad, k)
			continue
		}
		slots[k] = &slot{meta: m, g: g}
	}
	c.mu.Lock()
	c.slots = slots
	c.rebuildIndirect()
	c.nextGen = max(c.nextGen, next)
	c.mu.Unlock()
	for _, s := range old {
		s.g.release()
	}
	if !c.readOnly {
		for _, k := range bad {
			c.deleteRecord(k)
		}
	}
	return nil
}

// rebuildIndirect recomputes the issuer indexes (certificate issuer →
// indirect CRLs, CRL issuer → own slots, CRL issuer → plain slot) after a
// slot changed; c.mu is held.
func (c *Cache) rebuildIndirect() {
	c.indirect = map[string][]string{}
	c.own = map[string][]string{}
	c.plain = map[string]*slot{}
	for k, s := range c.slots {
		for _, h := range s.meta.Indirect {
			c.indirect[h] = append(c.indirect[h], k)
		}
		c.own[s.meta.IssuerHash] = append(c.own[s.meta.IssuerHash], k)
	}
	for issuer, keys := range c.own {
		slices.Sort(keys)
		if s := c.slots[keys[0]]; len(keys) == 1 && keys[0] == issuer && !s.meta.Freshest {
			c.plain[issuer] = s
		}
	}
}

// collectGarbage removes files no Meta references: generation files of
// interrupted ingests or replaced CRLs, and temporary files.
func (c *Cache) collectGarbage() {
	used := map[string]bool{}
	c.mu.RLock()
	for _, s := range c.slots {
		used[genName(s.meta.Generation)] = true
	}
	c.mu.RUnlock()
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		n := e.Name()
		stale := false
		if m, _ := filepath.Match("crl-*.blk", n); m && !used[n] {
			stale = true
		}
		if m, _ := filepath.Match("*.tmp", n); m {
			stale = true
		}
		if stale {
			os.Remove(filepath.Join(c.dir, n))
		}
	}
}
