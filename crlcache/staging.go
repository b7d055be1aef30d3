package crlcache

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// Staging receives the entries of one CRL, in any order, before it is
// switched in. Nothing of it is in the database until Commit: the sorted
// runs live in an unlinked temporary file (gone with the process, even
// after kill -9), the result in a generation file that only Commit
// references; Abort, a failed Commit or the next Open remove it.
type Staging struct {
	c    *Cache
	gen  uint64
	cur  *run
	key  []byte
	n    int64
	done bool
	err  error // first error of Add (sticky)

	// The sorter goroutine sorts and spills full runs.
	full     chan *run
	free     chan *run
	sorted   chan error
	mu       sync.Mutex // guards spans and sortErr
	sortErr  error
	spill    *os.File
	sw       *bufio.Writer
	spillOff int64
	spans    []span
	tmp      []ref  // radix sort scratch (the sorter's, then write's)
	out      []byte // the same memory, where spill assembles a run
	runs     []*run
	frees    []func()

	indirect map[string]bool
}

// ErrDuplicate is wrapped when a CRL lists a serial twice.
var ErrDuplicate = fmt.Errorf("crlcache: duplicate serial number in CRL: %w", gpgerr.ErrInvCRL)

// Begin starts a staging area for a new CRL.
func (c *Cache) Begin() (*Staging, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nextGen++
	gen := c.nextGen
	c.mu.Unlock()
	s := &Staging{c: c, gen: gen, cur: newRun()}
	s.runs = append(s.runs, s.cur)
	var free func()
	s.tmp, s.out, free = offHeapScratch(runEntries)
	s.frees = append(s.frees, free)
	return s, nil
}

// Add stages one revoked serial of a certificate issued by the CRL issuer.
// serial is copied.
func (s *Staging) Add(serial []byte, reason uint16, revokedAt time.Time) error {
	return s.add(nil, serial, reason, revokedAt)
}

// AddFor stages an entry of an indirect CRL for a certificate issued by
// certIssuerHash (40 hex digits, as certid.IssuerHash), named by the
// entry's certificateIssuer extension. serial is copied.
func (s *Staging) AddFor(certIssuerHash string, serial []byte, reason uint16, revokedAt time.Time) error {
	raw, err := hex.DecodeString(certIssuerHash)
	if err != nil || len(raw) != 20 {
		return fmt.Errorf("crlcache: bad certificate issuer hash %q: %w", certIssuerHash, gpgerr.ErrInvArg)
	}
	if s.indirect == nil {
		s.indirect = map[string]bool{}
	}
	s.indirect[upperHex(raw)] = true
	return s.add(raw, serial, reason, revokedAt)
}

func (s *Staging) add(certIssuer, serial []byte, reason uint16, revokedAt time.Time) error {
	if s.err != nil {
		return s.err
	}
	if s.done {
		return fmt.Errorf("crlcache: staging area already finished")
	}
	if len(serial) == 0 || len(serial) > 255 {
		return fmt.Errorf("crlcache: serial of %d bytes: %w", len(serial), gpgerr.ErrInvCRL)
	}
	s.key = appendKey(s.key[:0], certIssuer, serial)
	s.cur.add(s.key, reason, revokedAt.Unix())
	s.n++
	if s.cur.full() {
		s.err = s.handoff()
	}
	return s.err
}

// Count returns the number of staged entries.
func (s *Staging) Count() int64 { return s.n }

// handoff passes the full run to the sorter and continues in a free one.
func (s *Staging) handoff() error {
	if s.full == nil {
		f, err := os.CreateTemp(s.c.dir, "stage-*.tmp")
		if err != nil {
			return fmt.Errorf("crlcache: creating the staging file: %w", err)
		}
		// Unlinked at once: the space is freed when the file is closed,
		// or when the process dies.
		os.Remove(f.Name())
		s.spill, s.sw = f, bufio.NewWriterSize(f, 64<<10)
		s.full, s.free, s.sorted = make(chan *run), make(chan *run, 2), make(chan error, 1)
		r := newRun()
		s.runs = append(s.runs, r)
		s.free <- r
		go s.sorter()
	}
	s.full <- s.cur
	s.cur = <-s.free
	s.mu.Lock()
	err := s.sortErr
	s.mu.Unlock()
	return err
}

// sorter sorts and spills the runs it receives until full is closed.
func (s *Staging) sorter() {
	var err error
	for r := range s.full {
		if err == nil {
			s.tmp, err = r.sort(s.tmp)
		}
		if err == nil {
			var n int64
			var samples []sample
			n, samples, err = r.spill(s.sw, s.spillOff, s.out)
			s.mu.Lock()
			s.spans = append(s.spans, span{off: s.spillOff, n: n, samples: samples})
			s.spillOff += n
			s.mu.Unlock()
			if err != nil {
				err = fmt.Errorf("crlcache: writing the staging file: %w", err)
			}
		}
		if err != nil {
			s.mu.Lock()
			s.sortErr = err
			s.mu.Unlock()
		}
		r.reset()
		s.free <- r
	}
	if err == nil {
		if ferr := s.sw.Flush(); ferr != nil {
			err = fmt.Errorf("crlcache: writing the staging file: %w", ferr)
		}
	}
	s.sorted <- err
}

// stopSorter waits for the sorter and returns its error.
func (s *Staging) stopSorter() error {
	if s.full == nil {
		return nil
	}
	close(s.full)
	err := <-s.sorted
	s.full = nil
	return err
}

// release frees the staging resources.
func (s *Staging) release() {
	s.stopSorter()
	if s.spill != nil {
		s.spill.Close()
		s.spill = nil
	}
	for _, r := range s.runs {
		r.free()
	}
	for _, f := range s.frees {
		f()
	}
	s.runs, s.frees, s.cur, s.tmp, s.out = nil, nil, nil, nil, nil
}

// span is a spilled run: its place in the staging file and key samples.
type span struct {
	off, n  int64
	samples []sample
}

// write merges everything staged into the generation file at path.
func (s *Staging) write(path string) error {
	if err := s.stopSorter(); err != nil {
		return err
	}
	var err error
	if s.tmp, err = s.cur.sort(s.tmp); err != nil {
		return err
	}
	// Only the last run is needed from here on: give the rest back
	// before the merge takes its read buffers.
	for _, r := range s.runs {
		if r != s.cur {
			r.free()
		}
	}
	for _, f := range s.frees {
		f()
	}
	s.runs, s.frees, s.tmp, s.out = []*run{s.cur}, nil, nil, nil
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("crlcache: creating %s: %w", path, err)
	}
	gw := newGenWriter(f)
	if gw.filt, err = newFilterIn(s.c.dir); err != nil {
		f.Close()
		return err
	}
	defer gw.filt.release()
	if len(s.spans) == 0 {
		err = merge([]source{&memSource{r: s.cur, i: -1, end: len(s.cur.refs)}}, gw)
	} else {
		err = s.mergeTwo(gw)
	}
	if err == nil {
		err = gw.finish()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("crlcache: writing %s: %w", path, cerr)
	}
	return err
}

// Abort discards the staging area. It is safe to call after Commit.
func (s *Staging) Abort() error {
	if s.done {
		return nil
	}
	s.done = true
	s.release()
	return nil
}

// CommitOptions control the final switch.
type CommitOptions struct {
	// AllowRollback accepts a CRL older than the cached one.
	AllowRollback bool
}

// Commit writes the staged entries, in key order, to a new generation
// file and switches the CRL slot of m (m.IssuerHash, m.Scope, m.Delta)
// to it in one small transaction. It refuses a CRL older than the one
// cached in that slot (lower CRL number, or older thisUpdate) unless
// opts.AllowRollback, and a CRL that lists a serial twice. On error the
// staged entries are removed and the cached CRL is unchanged.
func (s *Staging) Commit(m Meta, opts CommitOptions) error {
	if s.done {
		return fmt.Errorf("crlcache: staging area already finished")
	}
	s.done = true
	if s.err != nil {
		s.release()
		return s.err
	}
	c := s.c
	tmp := filepath.Join(c.dir, genName(s.gen)+".tmp")
	err := s.write(tmp)
	s.release()
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.dir, genName(s.gen)))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	m.Generation = s.gen
	m.Entries = s.n
	m.Indirect = sortedKeys(s.indirect)
	return c.install(m, opts)
}
