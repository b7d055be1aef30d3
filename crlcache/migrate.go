package crlcache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Version 1 buckets (one CRL per issuer, entries inside the database).
var (
	bucketV1Meta    = []byte("meta")
	bucketV1Entries = []byte("entries")
)

// init creates the buckets of a new database and migrates a version 1
// one: each cached CRL's entries are copied, already in serial order,
// into a generation file and its Meta into "crls"; the old buckets are
// then deleted (maybeCompact gives the space back). CRLs loaded from
// files cannot be refetched, which is why the cache migrates rather than
// starting over. A CRL that cannot be read is dropped (logged).
func (c *Cache) init() error {
	var version string
	err := c.view(func(tx *bolt.Tx) error {
		if info := tx.Bucket(bucketInfo); info != nil {
			version = string(info.Get(keyVersion))
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch version {
	case "", string(layoutVersion):
		return c.update(createBuckets)
	case "1":
		return c.migrateV1()
	}
	return fmt.Errorf("crlcache: unsupported cache version %q in %s", version, c.path)
}

func (c *Cache) migrateV1() error {
	var metas []Meta
	err := c.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketV1Meta)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m Meta
			if err := json.Unmarshal(v, &m); err != nil || !isHash(string(k)) || m.IssuerHash != string(k) {
				DamageHook("migration: dropping a damaged CRL record", c.path, fmt.Errorf("record %q", k))
				return nil
			}
			metas = append(metas, m)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("crlcache: migrating %s: %w", c.path, err)
	}
	var next uint64
	var done []Meta
	for _, m := range metas {
		next = max(next, m.Generation)
		if err := c.migrateCRL(&m); err != nil {
			DamageHook("migration: dropping a CRL that cannot be read (refetched on next use)", c.path, err)
			continue
		}
		done = append(done, m)
	}
	err = c.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketV1Meta, bucketV1Entries} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
		}
		if err := createBuckets(tx); err != nil {
			return err
		}
		for i := range done {
			if err := putMeta(tx, &done[i]); err != nil {
				return err
			}
		}
		info := tx.Bucket(bucketInfo)
		if err := info.Put(keyNextGen, genKey(next)); err != nil {
			return err
		}
		return info.Put(keyVersion, layoutVersion)
	})
	if err != nil {
		return fmt.Errorf("crlcache: migrating %s: %w", c.path, err)
	}
	DamageHook(fmt.Sprintf("migrated the cache from layout 1 to 2 (%d of %d CRLs)", len(done), len(metas)), c.path, nil)
	return nil
}

// migrateCRL writes the version 1 entries of m into a generation file.
func (c *Cache) migrateCRL(m *Meta) error {
	if m.Generation == 0 {
		return errors.New("generation 0")
	}
	tmp := filepath.Join(c.dir, genName(m.Generation)+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	gw := newGenWriter(f)
	if gw.filt, err = newFilterIn(c.dir); err != nil {
		f.Close()
		return err
	}
	defer gw.filt.release()
	var key []byte
	var n int64
	err = c.view(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketV1Entries)
		if eb == nil {
			return errors.New("no entries bucket")
		}
		b := eb.Bucket(genKey(m.Generation))
		if b == nil {
			return fmt.Errorf("entries of %s missing", m.IssuerHash)
		}
		return b.ForEach(func(_, v []byte) error {
			return legacyEach(v, func(serial []byte, r uint16, at int64) error {
				n++
				key = appendKey(key[:0], nil, serial)
				return gw.add(key, r, at)
			})
		})
	})
	if err == nil {
		err = gw.finish()
	}
	f.Close()
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.dir, genName(m.Generation)))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	m.Entries = n
	return nil
}
