package crlcache

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// errFault wraps a panic or memory fault met inside bbolt: the database
// file is damaged.
var errFault = errors.New("crlcache: damaged database")

// protect runs fn, turning a panic or a memory fault (SIGSEGV/SIGBUS on a
// truncated or corrupt mmap) into an error wrapping errFault.
func protect(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errFault, r)
		}
	}()
	return fn()
}

// checkDB walks every bucket, key and value of a freshly opened database
// (it holds only metadata and OCSP answers, so this is cheap) and checks
// that the file holds every page the meta page claims: a truncated or
// corrupt file is found here, at open, rather than by a lookup.
func checkDB(db *bolt.DB, path string) error {
	return protect(func() error {
		return db.View(func(tx *bolt.Tx) error {
			fi, err := os.Stat(path)
			if err == nil && tx.Size() > fi.Size() {
				return fmt.Errorf("%w: file has %d bytes, its pages need %d", errFault, fi.Size(), tx.Size())
			}
			var sum byte
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return walkBucket(b, &sum)
			})
		})
	})
}

func walkBucket(b *bolt.Bucket, sum *byte) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walkBucket(nb, sum)
			}
			return nil
		}
		if len(v) > 0 {
			*sum ^= v[0] ^ v[len(v)-1]
		}
		return nil
	})
}

// view runs a read transaction; a fault repairs the database.
func (c *Cache) view(fn func(*bolt.Tx) error) error {
	return c.run((*bolt.DB).View, fn)
}

// update runs a write transaction; a fault repairs the database.
func (c *Cache) update(fn func(*bolt.Tx) error) error {
	if c.readOnly {
		return errors.New("crlcache: the cache is open read-only")
	}
	return c.run((*bolt.DB).Update, fn)
}

// run runs fn in a transaction of the given kind with panics and memory
// faults turned into errors; a fault repairs the database.
func (c *Cache) run(tx func(*bolt.DB, func(*bolt.Tx) error) error, fn func(*bolt.Tx) error) error {
	c.dbmu.RLock()
	db := c.db
	var err error
	if db == nil {
		err = errors.New("crlcache: cache closed")
	} else {
		err = protect(func() error { return tx(db, fn) })
	}
	c.dbmu.RUnlock()
	if errors.Is(err, errFault) {
		c.repair(db, err)
	}
	return err
}

// usable reports whether the cache can take a new CRL.
func (c *Cache) usable() error {
	if c.readOnly {
		return errors.New("crlcache: the cache is open read-only")
	}
	return nil
}

// repair replaces a database found damaged at run time: it is moved
// aside, a new one is created and the CRL records still held in memory
// (their entry files are separate and checked on every read) are written
// back. OCSP answers are lost; they are fetched again.
func (c *Cache) repair(bad *bolt.DB, cause error) {
	if c.readOnly {
		return
	}
	c.dbmu.Lock()
	defer c.dbmu.Unlock()
	if c.db != bad {
		return // already repaired
	}
	protect(bad.Close)
	c.db = nil
	aside := fmt.Sprintf("%s.corrupt-%d", c.path, time.Now().UnixNano())
	if err := os.Rename(c.path, aside); err != nil {
		os.Remove(c.path)
		aside = ""
	}
	DamageHook("database damaged at run time; rebuilt from memory (kept aside: "+aside+")", c.path, cause)
	db, err := c.openChecked()
	if err != nil {
		DamageHook("cannot recreate the database; CRLs are not kept", c.path, err)
		return
	}
	c.mu.RLock()
	metas := make([]Meta, 0, len(c.slots))
	for _, s := range c.slots {
		metas = append(metas, s.meta)
	}
	next := c.nextGen
	c.mu.RUnlock()
	err = protect(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			if err := createBuckets(tx); err != nil {
				return err
			}
			for _, m := range metas {
				if err := putMeta(tx, &m); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketInfo).Put(keyNextGen, genKey(next))
		})
	})
	if err != nil {
		DamageHook("cannot rebuild the database", c.path, err)
	}
	c.db = db
}

// maybeCompact rewrites the database when most of it is free pages (after
// a migration, or many OCSP answers expired and removed).
func (c *Cache) maybeCompact() {
	fi, err := os.Stat(c.path)
	if err != nil || fi.Size() < 1<<20 {
		return
	}
	c.dbmu.Lock()
	defer c.dbmu.Unlock()
	st := c.db.Stats()
	pageSize := int64(os.Getpagesize())
	free := int64(st.FreePageN+st.PendingPageN) * pageSize
	if free*2 < fi.Size() {
		return
	}
	tmp := c.path + ".compact.tmp"
	os.Remove(tmp)
	err = protect(func() error {
		dst, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType, NoSync: true})
		if err != nil {
			return err
		}
		if err := bolt.Compact(dst, c.db, 4<<20); err != nil {
			dst.Close()
			return err
		}
		if err := dst.Sync(); err != nil {
			dst.Close()
			return err
		}
		return dst.Close()
	})
	if err == nil {
		c.db.Close()
		if err = os.Rename(tmp, c.path); err == nil {
			c.db, err = bolt.Open(c.path, 0o600, c.bopts)
		}
		if err != nil {
			DamageHook("compaction failed; the cache starts empty", c.path, err)
			os.Remove(c.path)
			c.db, err = bolt.Open(c.path, 0o600, c.bopts)
			if err == nil {
				err = protect(func() error { return c.db.Update(createBuckets) })
			}
		}
	}
	if err != nil {
		os.Remove(tmp)
		if c.db == nil {
			DamageHook("cannot reopen the database after compaction", c.path, err)
		}
	}
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketCRLs, bucketInfo, bucketOCSP} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("crlcache: creating bucket %s: %w", name, err)
		}
	}
	info := tx.Bucket(bucketInfo)
	if info.Get(keyVersion) == nil {
		return info.Put(keyVersion, layoutVersion)
	}
	return nil
}

// decodeMeta decodes and checks a stored CRL record.
func decodeMeta(k, v []byte) (Meta, error) {
	id, err := parseKey(string(k))
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(v, &m); err != nil {
		return Meta{}, fmt.Errorf("crlcache: corrupt record for %s: %w", k, err)
	}
	if m.ID() != id || m.Generation == 0 || m.Entries < 0 {
		return Meta{}, fmt.Errorf("crlcache: corrupt record for %s", k)
	}
	for _, h := range m.Indirect {
		if !isHash(h) {
			return Meta{}, fmt.Errorf("crlcache: corrupt record for %s: bad indirect issuer", k)
		}
	}
	return m, nil
}

func putMeta(tx *bolt.Tx, m *Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("crlcache: encoding record: %w", err)
	}
	return tx.Bucket(bucketCRLs).Put([]byte(m.ID().Key()), v)
}

func genKey(g uint64) []byte { return binary.BigEndian.AppendUint64(nil, g) }

func decodeGen(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
