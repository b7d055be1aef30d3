package crlcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Ingest is an external sort: entries are collected in runs of runEntries,
// each run is sorted (on a second goroutine while parsing goes on) and
// spilled to an unlinked temporary file in the cache directory; Commit
// merges the spilled runs and the last, in-memory run into the generation
// file, written once in key order. Memory is two runs plus one read buffer
// per spilled run, whatever the CRL's size or order.
const (
	runEntries  = 128 << 10
	spillBuffer = 32 << 10
)

// ref is one entry of a run; its key lives in the run's arena. pfx is the
// key's first 8 bytes (big-endian, zero-padded) so that most comparisons
// are one integer compare.
type ref struct {
	pfx    uint64
	off    uint32
	klen   uint16
	reason uint16
	at     int64
}

type run struct {
	arena []byte
	refs  []ref
}

func newRun() *run {
	return &run{arena: make([]byte, 0, runEntries*20), refs: make([]ref, 0, runEntries)}
}

func (r *run) reset() { r.arena, r.refs = r.arena[:0], r.refs[:0] }

func (r *run) key(e *ref) []byte { return r.arena[e.off : e.off+uint32(e.klen)] }

// add appends key (copied) to the run.
func (r *run) add(key []byte, reason uint16, at int64) {
	var p [8]byte
	copy(p[:], key)
	off := len(r.arena)
	r.arena = append(r.arena, key...)
	r.refs = append(r.refs, ref{pfx: binary.BigEndian.Uint64(p[:]), off: uint32(off), klen: uint16(len(key)), reason: reason, at: at})
}

// sort orders the run by key and refuses duplicates: an LSD radix sort on
// the 8-byte prefixes (bytes that are the same in every key, such as the
// tag, cost no pass), then an insertion sort of each group of equal
// prefixes by the whole key. tmp is scratch space, returned for reuse.
func (r *run) sort(tmp []ref) ([]ref, error) {
	if cap(tmp) < len(r.refs) {
		tmp = make([]ref, len(r.refs))
	}
	tmp = tmp[:len(r.refs)]
	src, dst := r.refs, tmp
	var counts [256]int
	for shift := uint(0); shift < 64; shift += 8 {
		clear(counts[:])
		for i := range src {
			counts[byte(src[i].pfx>>shift)]++
		}
		if counts[byte(src[0].pfx>>shift)] == len(src) {
			continue // every key has the same byte here
		}
		pos := 0
		for i, c := range counts {
			counts[i] = pos
			pos += c
		}
		for i := range src {
			b := byte(src[i].pfx >> shift)
			dst[counts[b]] = src[i]
			counts[b]++
		}
		src, dst = dst, src
	}
	if &src[0] != &r.refs[0] {
		copy(r.refs, src)
	}
	refs := r.refs
	for i := 1; i < len(refs); i++ {
		if refs[i].pfx != refs[i-1].pfx {
			continue
		}
		// Insertion sort of the group ending at i by the whole key.
		for j := i; j > 0 && refs[j].pfx == refs[j-1].pfx; j-- {
			c := bytes.Compare(r.key(&refs[j-1]), r.key(&refs[j]))
			if c == 0 {
				return tmp, fmt.Errorf("%w: %X", ErrDuplicate, keySerial(r.key(&refs[j])))
			}
			if c < 0 {
				break
			}
			refs[j-1], refs[j] = refs[j], refs[j-1]
		}
	}
	return tmp, nil
}

// spill writes a sorted run as records: uvarint len, key, uvarint reason,
// varint revokedAt.
func (r *run) spill(w *bufio.Writer) (int64, error) {
	var n int64
	var tmp [3 * binary.MaxVarintLen64]byte
	for i := range r.refs {
		e := &r.refs[i]
		h := binary.PutUvarint(tmp[:], uint64(e.klen))
		if _, err := w.Write(tmp[:h]); err != nil {
			return n, err
		}
		if _, err := w.Write(r.key(e)); err != nil {
			return n, err
		}
		t := binary.PutUvarint(tmp[:], uint64(e.reason))
		t += binary.PutVarint(tmp[t:], e.at)
		if _, err := w.Write(tmp[:t]); err != nil {
			return n, err
		}
		n += int64(h + int(e.klen) + t)
	}
	return n, nil
}

// source is one sorted input of the merge.
type source interface {
	// next advances; it returns false at the end.
	next() (bool, error)
	cur() (key []byte, reason uint16, at int64)
}

// memSource reads a sorted run in memory.
type memSource struct {
	r *run
	i int
}

func (m *memSource) next() (bool, error) {
	m.i++
	return m.i < len(m.r.refs), nil
}

func (m *memSource) cur() ([]byte, uint16, int64) {
	e := &m.r.refs[m.i]
	return m.r.key(e), e.reason, e.at
}

// fileSource reads a spilled run.
type fileSource struct {
	br     *bufio.Reader
	key    []byte
	reason uint16
	at     int64
}

func newFileSource(ra io.ReaderAt, off, n int64) *fileSource {
	return &fileSource{br: bufio.NewReaderSize(io.NewSectionReader(ra, off, n), spillBuffer), key: make([]byte, 0, 32)}
}

func (f *fileSource) next() (bool, error) {
	l, err := binary.ReadUvarint(f.br)
	if err == io.EOF {
		return false, nil
	}
	if err != nil || l > maxKeyLen {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", errOr(err, errCorruptBlock))
	}
	f.key = f.key[:l]
	if _, err := io.ReadFull(f.br, f.key); err != nil {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", err)
	}
	r, err := binary.ReadUvarint(f.br)
	if err != nil {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", err)
	}
	at, err := binary.ReadVarint(f.br)
	if err != nil {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", err)
	}
	f.reason, f.at = uint16(r), at
	return true, nil
}

func (f *fileSource) cur() ([]byte, uint16, int64) { return f.key, f.reason, f.at }

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// merge writes the union of sorted sources to out in key order (a binary
// min-heap of sources).
func merge(srcs []source, out *genWriter) error {
	h := srcs[:0]
	for _, s := range srcs {
		ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, s)
		}
	}
	less := func(i, j int) bool {
		a, _, _ := h[i].cur()
		b, _, _ := h[j].cur()
		return bytes.Compare(a, b) < 0
	}
	down := func(i int) {
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			m := l
			if r := l + 1; r < len(h) && less(r, l) {
				m = r
			}
			if !less(m, i) {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		k, r, at := h[0].cur()
		if err := out.add(k, r, at); err != nil {
			return err
		}
		ok, err := h[0].next()
		if err != nil {
			return err
		}
		if !ok {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
	return nil
}
