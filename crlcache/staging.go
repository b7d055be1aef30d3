package crlcache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
	bolt "go.etcd.io/bbolt"
)

// batchSize is the number of entries sorted in memory and written per
// staging transaction. Small batches keep the peak memory of an ingest
// low (about 20 MB RSS for the whole daemon) at no cost in speed.
const batchSize = 32 * 1024

// Staging receives the entries of one CRL before it is switched in.
type Staging struct {
	c     *Cache
	gen   uint64
	key   []byte
	batch []entryRef
	arena []byte
	n     int64
	done  bool
	// maxKey is the largest serial written so far; a batch entirely above
	// it is appended without merging (the common case: CRLs are usually
	// sorted).
	maxKey  []byte
	flushed bool
	buf     []byte
}

// ErrDuplicate is wrapped when a CRL lists a serial twice.
var ErrDuplicate = fmt.Errorf("crlcache: duplicate serial number in CRL: %w", gpgerr.ErrInvCRL)

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
	if len(serial) == 0 || len(serial) > 255 {
		return fmt.Errorf("crlcache: serial of %d bytes: %w", len(serial), gpgerr.ErrInvCRL)
	}
	if s.arena == nil {
		s.arena = make([]byte, 0, batchSize*8)
		s.batch = make([]entryRef, 0, batchSize)
	}
	if cap(s.arena)-len(s.arena) < len(serial) {
		// Keep earlier references valid: start a new arena.
		s.arena = make([]byte, 0, max(batchSize*8, len(serial)))
	}
	off := len(s.arena)
	s.arena = append(s.arena, serial...)
	s.batch = append(s.batch, entryRef{serial: s.arena[off:len(s.arena):len(s.arena)], reason: reason, at: revokedAt.Unix()})
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
	cmp := func(a, b entryRef) int { return bytes.Compare(a.serial, b.serial) }
	if !slices.IsSortedFunc(s.batch, cmp) {
		slices.SortFunc(s.batch, cmp)
	}
	for i := 1; i < len(s.batch); i++ {
		if bytes.Equal(s.batch[i-1].serial, s.batch[i].serial) {
			return fmt.Errorf("%w: %X", ErrDuplicate, s.batch[i].serial)
		}
	}
	batch := s.batch
	err := s.c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket(s.key)
		if b == nil {
			return fmt.Errorf("crlcache: staging area %x vanished", s.key)
		}
		if !s.flushed || bytes.Compare(batch[0].serial, s.maxKey) > 0 {
			b.FillPercent = 1.0 // appending in key order
			return s.putBlocks(b, batch)
		}
		return s.merge(b, batch)
	})
	last := batch[len(batch)-1].serial
	if !s.flushed || bytes.Compare(last, s.maxKey) > 0 {
		s.maxKey = append(s.maxKey[:0], last...)
	}
	s.batch = s.batch[:0]
	s.arena = s.arena[:0]
	s.flushed = true
	if err != nil {
		return fmt.Errorf("crlcache: staging entries: %w", err)
	}
	return nil
}

// putBlocks writes sorted entries as blocks keyed by their last serial.
func (s *Staging) putBlocks(b *bolt.Bucket, es []entryRef) error {
	for len(es) > 0 {
		n := min(blockEntries, len(es))
		s.buf = encodeBlock(s.buf, es[:n])
		// bbolt keeps key and value slices until commit: copy them.
		key := append([]byte(nil), es[n-1].serial...)
		if err := b.Put(key, append([]byte(nil), s.buf...)); err != nil {
			return err
		}
		es = es[n:]
	}
	return nil
}

// merge inserts a sorted batch that overlaps blocks already written.
func (s *Staging) merge(b *bolt.Bucket, batch []entryRef) error {
	c := b.Cursor()
	for i := 0; i < len(batch); {
		k, v := c.Seek(batch[i].serial)
		if k == nil {
			// Everything left sorts after every block.
			return s.putBlocks(b, batch[i:])
		}
		j := i
		for j < len(batch) && bytes.Compare(batch[j].serial, k) <= 0 {
			j++
		}
		var old []entryRef
		if err := blockEach(v, func(serial []byte, r uint16, at int64) error {
			old = append(old, entryRef{serial: append([]byte(nil), serial...), reason: r, at: at})
			return nil
		}); err != nil {
			return err
		}
		merged := make([]entryRef, 0, len(old)+j-i)
		x, y := 0, i
		for x < len(old) || y < j {
			switch {
			case y == j || (x < len(old) && bytes.Compare(old[x].serial, batch[y].serial) < 0):
				merged = append(merged, old[x])
				x++
			case x == len(old) || bytes.Compare(old[x].serial, batch[y].serial) > 0:
				merged = append(merged, batch[y])
				y++
			default:
				return fmt.Errorf("%w: %X", ErrDuplicate, batch[y].serial)
			}
		}
		if err := b.Delete(append([]byte(nil), k...)); err != nil {
			return err
		}
		if err := s.putBlocks(b, merged); err != nil {
			return err
		}
		i = j
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
