package crlcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// install switches m's slot to the generation file just written
// (m.Generation), refusing a rollback. On error the file is removed.
func (c *Cache) install(m Meta, opts CommitOptions) error {
	path := filepath.Join(c.dir, genName(m.Generation))
	g, err := openGen(path)
	if err != nil {
		os.Remove(path)
		return err
	}
	key := m.ID().Key()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur := c.slots[key]
	next := c.nextGen
	c.mu.RUnlock()
	if cur != nil && !opts.AllowRollback && cur.meta.Flags == 0 && isOlder(&m, &cur.meta) {
		g.release()
		os.Remove(path)
		return fmt.Errorf("%w (cached: number %q, this update %s)", ErrRollback, cur.meta.Number, cur.meta.ThisUpdate.Format(time.RFC3339))
	}
	err = c.update(func(tx *bolt.Tx) error {
		if err := putMeta(tx, &m); err != nil {
			return err
		}
		return tx.Bucket(bucketInfo).Put(keyNextGen, genKey(max(next, m.Generation)))
	})
	if err != nil {
		g.release()
		os.Remove(path)
		return fmt.Errorf("crlcache: storing the CRL of %s: %w", m.Issuer, err)
	}
	c.mu.Lock()
	if c.slots == nil { // closed meanwhile
		c.mu.Unlock()
		g.release()
		return errors.New("crlcache: cache closed")
	}
	c.slots[key] = &slot{meta: m, g: g}
	c.rebuildIndirect()
	c.mu.Unlock()
	if cur != nil {
		c.retire(cur)
	}
	return nil
}

// retire removes a replaced slot's file; lookups still reading it keep
// their open descriptor until they release it.
func (c *Cache) retire(s *slot) {
	os.Remove(s.g.path)
	s.g.release()
}

// Touch records a refresh of issuerHash's base CRL (a fetch that found it
// unchanged, or a completed load) and persists it.
func (c *Cache) Touch(issuerHash string, at time.Time) error {
	return c.updateMeta(BaseID(issuerHash), func(m *Meta) { m.LastRefresh = at })
}

// SetFlags sets the state flags of issuerHash's base CRL.
func (c *Cache) SetFlags(issuerHash string, flags int) error {
	return c.updateMeta(BaseID(issuerHash), func(m *Meta) { m.Flags = flags })
}

// UpdateMeta changes the stored Meta of one slot with fn (which must not
// change the slot, generation or entry count).
func (c *Cache) UpdateMeta(id CRLID, fn func(*Meta)) error { return c.updateMeta(id, fn) }

func (c *Cache) updateMeta(id CRLID, fn func(*Meta)) error {
	key := id.Key()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.RLock()
	cur := c.slots[key]
	c.mu.RUnlock()
	if cur == nil {
		return nil
	}
	m := cur.meta
	fn(&m)
	m.IssuerHash, m.Scope, m.Delta = id.Issuer, id.Scope, id.Delta
	m.Generation, m.Entries, m.Indirect = cur.meta.Generation, cur.meta.Entries, cur.meta.Indirect
	if err := c.update(func(tx *bolt.Tx) error { return putMeta(tx, &m) }); err != nil {
		return fmt.Errorf("crlcache: updating %s: %w", key, err)
	}
	c.mu.Lock()
	if s := c.slots[key]; s == cur {
		c.slots[key] = &slot{meta: m, g: cur.g}
		c.rebuildIndirect() // the indexes hold slots (and Freshest may have changed)
	}
	c.mu.Unlock()
	return nil
}

// Drop removes one cached CRL.
func (c *Cache) Drop(id CRLID) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.removeSlot(id.Key())
}

// removeSlot deletes a slot's record and file; c.wmu is held.
func (c *Cache) removeSlot(key string) error {
	err := c.deleteRecord(key)
	c.mu.Lock()
	s := c.slots[key]
	delete(c.slots, key)
	c.rebuildIndirect()
	c.mu.Unlock()
	if s != nil {
		c.retire(s)
	}
	return err
}

func (c *Cache) deleteRecord(key string) error {
	err := c.update(func(tx *bolt.Tx) error { return tx.Bucket(bucketCRLs).Delete([]byte(key)) })
	if err != nil {
		return fmt.Errorf("crlcache: removing %s: %w", key, err)
	}
	return nil
}

// Flush removes every cached CRL and OCSP answer.
func (c *Cache) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketCRLs, bucketOCSP} {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
		}
		return createBuckets(tx)
	})
	if err != nil {
		return fmt.Errorf("crlcache: flushing: %w", err)
	}
	c.mu.Lock()
	old := c.slots
	c.slots = map[string]*slot{}
	c.rebuildIndirect()
	c.mu.Unlock()
	for _, s := range old {
		c.retire(s)
	}
	return nil
}

// GetOCSP returns a cached OCSP answer (see package ocsp).
func (c *Cache) GetOCSP(key []byte) ([]byte, bool) {
	var out []byte
	c.view(func(tx *bolt.Tx) error {
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
	err := c.update(func(tx *bolt.Tx) error {
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
