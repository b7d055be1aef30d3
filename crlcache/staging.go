package crlcache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/dirmngr/dirmngr/assuan"
)

// batchSize is the number of entries written per staging transaction.
const batchSize = 200_000

// Staging receives the entries of one CRL before it is switched in.
type Staging struct {
	c     *Cache
	gen   uint64
	key   []byte
	batch []stagedEntry
	arena []byte
	n     int64
	done  bool
	// flushed is set once a batch has been written; only then can a
	// serial collide with an earlier batch.
	flushed bool
}

type stagedEntry struct {
	off, len int
	val      [10]byte
}

// ErrDuplicate is wrapped when a CRL lists a serial twice.
var ErrDuplicate = fmt.Errorf("crlcache: duplicate serial number in CRL: %w", assuan.ErrInvCRL)

// Begin starts a staging area for a new CRL.
func (c *Cache) Begin() (*Staging, error) {
	var gen uint64
	err := c.db.Update(func(tx *bolt.Tx) error {
		info := tx.Bucket(bucketInfo)
		if v := info.Get(keyNextGen); len(v) == 8 {
			gen = binary.BigEndian.Uint64(v)
		}
		gen++
		if err := info.Put(keyNextGen, genKey(gen)); err != nil {
			return err
		}
		_, err := tx.Bucket(bucketEntries).CreateBucket(genKey(gen))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("crlcache: starting staging area: %w", err)
	}
	return &Staging{c: c, gen: gen, key: genKey(gen)}, nil
}

// Add stages one revoked serial. serial is copied.
func (s *Staging) Add(serial []byte, reason uint16, revokedAt time.Time) error {
	e := stagedEntry{off: len(s.arena), len: len(serial)}
	s.arena = append(s.arena, serial...)
	binary.BigEndian.PutUint16(e.val[:2], reason)
	binary.BigEndian.PutUint64(e.val[2:], uint64(revokedAt.Unix()))
	s.batch = append(s.batch, e)
	s.n++
	if len(s.batch) >= batchSize {
		return s.flush()
	}
	return nil
}

// Count returns the number of staged entries.
func (s *Staging) Count() int64 { return s.n }

func (s *Staging) flush() error {
	if len(s.batch) == 0 {
		return nil
	}
	key := func(e stagedEntry) []byte { return s.arena[e.off : e.off+e.len] }
	slices.SortFunc(s.batch, func(a, b stagedEntry) int { return bytes.Compare(key(a), key(b)) })
	for i := 1; i < len(s.batch); i++ {
		if bytes.Equal(key(s.batch[i-1]), key(s.batch[i])) {
			return fmt.Errorf("%w: %X", ErrDuplicate, key(s.batch[i]))
		}
	}
	err := s.c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket(s.key)
		if b == nil {
			return fmt.Errorf("crlcache: staging area %x vanished", s.key)
		}
		b.FillPercent = 0.9
		empty := !s.flushed
		for _, e := range s.batch {
			k := key(e)
			if !empty && b.Get(k) != nil {
				return fmt.Errorf("%w: %X", ErrDuplicate, k)
			}
			if err := b.Put(k, e.val[:]); err != nil {
				return err
			}
		}
		return nil
	})
	s.batch = s.batch[:0]
	s.arena = s.arena[:0]
	s.flushed = true
	if err != nil {
		return fmt.Errorf("crlcache: staging entries: %w", err)
	}
	return nil
}

// Abort discards the staging area. It is safe to call after Commit.
func (s *Staging) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	return s.c.dropGeneration(s.key)
}

// CommitOptions control the final switch.
type CommitOptions struct {
	// AllowRollback accepts a CRL older than the cached one.
	AllowRollback bool
}

// Commit switches issuer m.IssuerHash to the staged entries in one small
// transaction. It refuses a CRL older than the one cached (lower CRL
// number, or older thisUpdate) unless opts.AllowRollback. On error the
// staging area is discarded and the cached CRL is unchanged.
func (s *Staging) Commit(m Meta, opts CommitOptions) error {
	if s.done {
		return fmt.Errorf("crlcache: staging area already finished")
	}
	if err := s.flush(); err != nil {
		s.Abort()
		return err
	}
	m.Generation = s.gen
	m.Entries = s.n
	v, err := json.Marshal(&m)
	if err != nil {
		s.Abort()
		return fmt.Errorf("crlcache: encoding record: %w", err)
	}
	c := s.c
	c.mu.Lock()
	var old []byte
	err = c.db.Update(func(tx *bolt.Tx) error {
		metaB := tx.Bucket(bucketMeta)
		if cur := metaB.Get([]byte(m.IssuerHash)); cur != nil {
			var cm Meta
			if err := json.Unmarshal(cur, &cm); err == nil {
				if !opts.AllowRollback && cm.Flags == 0 && isOlder(&m, &cm) {
					return fmt.Errorf("%w (cached: number %q, this update %s)", ErrRollback, cm.Number, cm.ThisUpdate.Format(time.RFC3339))
				}
				old = genKey(cm.Generation)
			}
		}
		return metaB.Put([]byte(m.IssuerHash), v)
	})
	if err == nil {
		c.metas[m.IssuerHash] = &m
	}
	c.mu.Unlock()
	s.done = true
	if err != nil {
		c.dropGeneration(s.key)
		return err
	}
	if old != nil && !bytes.Equal(old, s.key) {
		// The old generation is garbage now; if this fails, Open collects it.
		if err := c.dropGeneration(old); err != nil {
			return fmt.Errorf("crlcache: CRL stored, but removing the previous one failed: %w", err)
		}
	}
	return nil
}
