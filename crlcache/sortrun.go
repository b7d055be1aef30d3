package crlcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Ingest is an external sort: entries are collected in runs of runEntries,
// each run is sorted (on a second goroutine while parsing goes on) and
// spilled to an unlinked temporary file in the cache directory; Commit
// merges the spilled runs and the last, in-memory run into the generation
// file, written once in key order. Memory is two runs plus one read buffer
// per spilled run, whatever the CRL's size or order.
const spillBuffer = 16 << 10

// runEntries is the size of a sorted run (a variable for tests).
var runEntries = 40 << 10

// ref is one entry of a run; its key lives in the run's arena at off.
// pfx is the key's first 8 bytes (big-endian, zero-padded) so that most
// comparisons are one integer compare.
type ref struct {
	pfx    uint64
	off    uint32
	klen   uint16
	reason uint16
	at     int64
}

// run is a batch of entries: their keys one after the other in arena, in
// the order added (each at least slotLen bytes, zero-padded), and their
// refs (sorted by sort).
type run struct {
	arena []byte
	refs  []ref
	frees []func()
}

// runKeyBytes is the arena room per entry; a run is handed off when its
// arena is nearly full, whatever the key lengths.
const runKeyBytes = 22

func newRun() *run {
	arena, fa := offHeap(runEntries * runKeyBytes)
	refs, fr := offHeapRefs(runEntries)
	return &run{arena: arena[:0], refs: refs, frees: []func(){fa, fr}}
}

// full reports whether the run must be handed off before the next key.
func (r *run) full() bool {
	return len(r.refs) >= cap(r.refs) || cap(r.arena)-len(r.arena) < maxKeyLen
}

// free releases the run's buffers.
func (r *run) free() {
	for _, f := range r.frees {
		f()
	}
	r.frees, r.arena, r.refs = nil, nil, nil
}

func (r *run) reset() { r.arena, r.refs = r.arena[:0], r.refs[:0] }

func (r *run) key(e *ref) []byte { return r.arena[e.off : e.off+uint32(e.klen)] }

// add appends key (copied) to the run.
func (r *run) add(key []byte, reason uint16, at int64) {
	off := len(r.arena)
	r.arena = append(r.arena, key...)
	if len(key) < slotLen {
		var zero [slotLen]byte
		r.arena = append(r.arena, zero[:slotLen-len(key)]...)
	}
	r.refs = append(r.refs, ref{pfx: prefix(key), off: uint32(off), klen: uint16(len(key)), reason: reason, at: at})
}

// slotLen is the least room of a key in the arena: spill writes a slot
// of that size over each key.
const slotLen = 4

// sort orders the run by key and refuses duplicates: an LSD radix sort on
// the 8-byte prefixes (bytes that are the same in every key, such as the
// tag, cost no pass), then an insertion sort of each group of equal
// prefixes by the whole key. tmp is scratch space, returned for reuse.
func (r *run) sort(tmp []ref) ([]ref, error) {
	if len(r.refs) < 2 {
		return tmp, nil
	}
	if cap(tmp) < len(r.refs) {
		tmp = make([]ref, len(r.refs)) // the caller's scratch is sized for a run
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

// spill writes a sorted run as records (uvarint len, key, uvarint reason,
// varint revokedAt) starting at file offset base, assembled in out (grown
// when too small). It returns the bytes written and every sampleEvery-th
// key with its record's offset, which let Commit split the merge in two.
// It uses up the run: only reset may follow.
//
// The records are assembled in two passes so that the arena is read in
// the order it was written, whatever the CRL's order: the first pass, in
// key order, writes each record with only its key's first 8 bytes (from
// pfx) and leaves, over the first slotLen bytes of the key in the arena,
// a slot saying where the key goes and how long it is; the second walks
// the arena from start to end and copies the rest of each key. Copying
// each key in key order instead reads the arena at random when the CRL
// lists its serials unsorted: a cache miss per entry, which made spilling
// a random-order run several times slower than a sorted one
// (docs/performance.md).
func (r *run) spill(w io.Writer, base int64, out []byte) (int64, []sample, error) {
	if need := len(r.arena) + len(r.refs)*maxRecordOverhead + 8; len(out) < need {
		out = make([]byte, need)
	}
	if len(out) >= 1<<(32-keyLenBits) {
		return 0, nil, fmt.Errorf("crlcache: sorted run of %d bytes: too large", len(out))
	}
	var samples []sample
	pos := 0
	for i := range r.refs {
		e := &r.refs[i]
		if i%sampleEvery == 0 {
			samples = append(samples, sample{key: append([]byte(nil), r.key(e)...), off: base + int64(pos)})
		}
		pos += binary.PutUvarint(out[pos:], uint64(e.klen))
		// Bytes past a short key are overwritten by what follows.
		binary.BigEndian.PutUint64(out[pos:], e.pfx)
		binary.LittleEndian.PutUint32(r.arena[e.off:], uint32(pos)<<keyLenBits|uint32(e.klen))
		pos += int(e.klen)
		pos += binary.PutUvarint(out[pos:], uint64(e.reason))
		pos += binary.PutVarint(out[pos:], e.at)
	}
	for off := 0; off < len(r.arena); {
		v := binary.LittleEndian.Uint32(r.arena[off:])
		kl := int(v & (1<<keyLenBits - 1))
		if kl > 8 {
			copy(out[int(v>>keyLenBits)+8:], r.arena[off+8:off+kl])
		}
		off += max(kl, slotLen)
	}
	if _, err := w.Write(out[:pos]); err != nil {
		return 0, nil, err
	}
	return int64(pos), samples, nil
}

// keyLenBits is the low bits of a spill slot that hold the key's length
// (the high bits: where the key goes in the run's records).
const keyLenBits = 9

// maxRecordOverhead bounds a spilled record's bytes besides its key.
const maxRecordOverhead = binary.MaxVarintLen16 + binary.MaxVarintLen16 + binary.MaxVarintLen64

// sample is a key of a spilled run and the offset of its record.
type sample struct {
	key []byte
	off int64
}

// sampleEvery spaces the key samples of a spilled run (a variable for tests).
var sampleEvery = 2048

// source is one sorted input of the merge.
type source interface {
	// next advances; it returns false at the end.
	next() (bool, error)
	cur() (key []byte, reason uint16, at int64)
}

// memSource reads refs [i+1, end) of a sorted run in memory.
type memSource struct {
	r   *run
	i   int
	end int
}

func (m *memSource) next() (bool, error) {
	m.i++
	return m.i < m.end, nil
}

func (m *memSource) cur() ([]byte, uint16, int64) {
	e := &m.r.refs[m.i]
	return m.r.key(e), e.reason, e.at
}

// fileSource reads a spilled run [off, end) through its own buffer.
type fileSource struct {
	ra       io.ReaderAt
	off, end int64 // next file offset to read, end of the run
	buf      []byte
	pos      int
	key      []byte
	reason   uint16
	at       int64
	lo, hi   []byte // keys < lo are skipped; the run ends at a key >= hi (nil: no bound)
	loP, hiP uint64 // prefix(lo), prefix(hi): most bound checks are one compare
}

// maxRecord bounds one spilled record.
const maxRecord = 2*binary.MaxVarintLen16 + maxKeyLen + binary.MaxVarintLen64

// fill makes sure a whole record is buffered, unless the run ends first.
func (f *fileSource) fill() error {
	if len(f.buf)-f.pos >= maxRecord || f.off == f.end {
		return nil
	}
	n := copy(f.buf[:cap(f.buf)], f.buf[f.pos:])
	want := min(int64(cap(f.buf)-n), f.end-f.off)
	got, err := f.ra.ReadAt(f.buf[n:n+int(want)], f.off)
	if int64(got) < want {
		return fmt.Errorf("crlcache: reading sorted run: %w", errOr(err, io.ErrUnexpectedEOF))
	}
	f.off += want
	f.buf, f.pos = f.buf[:n+got], 0
	return nil
}

func (f *fileSource) next() (bool, error) {
	for {
		ok, err := f.read()
		if !ok || err != nil {
			return ok, err
		}
		p := prefix(f.key)
		if f.hi != nil && p >= f.hiP && (p > f.hiP || bytes.Compare(f.key, f.hi) >= 0) {
			f.off, f.buf, f.pos = f.end, f.buf[:0], 0
			return false, nil
		}
		if f.lo == nil || p > f.loP || (p == f.loP && bytes.Compare(f.key, f.lo) >= 0) {
			return true, nil
		}
	}
}

func (f *fileSource) read() (bool, error) {
	if err := f.fill(); err != nil {
		return false, err
	}
	d := f.buf[f.pos:]
	if len(d) == 0 {
		return false, nil
	}
	l, n := binary.Uvarint(d)
	if n <= 0 || l > maxKeyLen || uint64(len(d)-n) < l {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", errCorruptBlock)
	}
	f.key = d[n : n+int(l)]
	p := n + int(l)
	r, n := binary.Uvarint(d[p:])
	if n <= 0 {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", errCorruptBlock)
	}
	p += n
	at, n := binary.Varint(d[p:])
	if n <= 0 {
		return false, fmt.Errorf("crlcache: reading sorted run: %w", errCorruptBlock)
	}
	f.pos += p + n
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

// head is a source in the merge heap with the first 8 bytes of its
// current key, so that most comparisons are one integer compare.
type head struct {
	pfx uint64
	key []byte
	src source
}

func (h *head) load() {
	h.key, _, _ = h.src.cur()
	h.pfx = prefix(h.key)
}

func prefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var p [8]byte
	copy(p[:], key)
	return binary.BigEndian.Uint64(p[:])
}

func (h *head) less(o *head) bool {
	if h.pfx != o.pfx {
		return h.pfx < o.pfx
	}
	return bytes.Compare(h.key, o.key) < 0
}

// merge writes the union of sorted sources to out in key order, through a
// loser tree: after each entry written only the path from the winner's
// leaf to the root is replayed, one comparison per level and no moves of
// heads (a binary heap needed two comparisons and a swap per level: about
// a fifth of a 3M random-order ingest's CPU, 15% more time than this).
func merge(srcs []source, out *genWriter) error {
	h := make([]head, 0, len(srcs))
	for _, s := range srcs {
		ok, err := s.next()
		if err != nil {
			return err
		}
		if ok {
			h = append(h, head{src: s})
			h[len(h)-1].load()
		}
	}
	if len(h) == 0 {
		return nil
	}
	t := newLoserTree(h)
	for {
		w := t.winner()
		if w < 0 {
			return nil
		}
		k, r, at := h[w].src.cur()
		if err := out.add(k, r, at); err != nil {
			return err
		}
		ok, err := h[w].src.next()
		if err != nil {
			return err
		}
		if ok {
			h[w].load()
		} else {
			h[w].src = nil // exhausted: loses to everything
		}
		t.replay(w)
	}
}

// loserTree is a tournament over heads: node i (1 <= i < k) holds the
// loser of the match played there, node 0 the overall winner; leaf j is
// node k+j. Exhausted heads (src nil) lose every match. pfx holds each
// head's key prefix (the largest for an exhausted head) side by side, so
// that a match is one integer compare and a conditional move; only equal
// prefixes take the full comparison.
type loserTree struct {
	h    []head
	node []int
	pfx  []uint64
}

func newLoserTree(h []head) *loserTree {
	k := len(h)
	t := &loserTree{h: h, node: make([]int, k), pfx: make([]uint64, k)}
	for j := range h {
		t.setPfx(j)
	}
	// win[i] is the winner of the subtree under node i (i >= 1), or of
	// the leaf for i >= k.
	win := make([]int, 2*k)
	for j := range k {
		win[k+j] = j
	}
	for i := k - 1; i >= 1; i-- {
		a, b := win[2*i], win[2*i+1]
		if t.beats(b, a) {
			a, b = b, a
		}
		win[i], t.node[i] = a, b
	}
	t.node[0] = win[1] // with one head: win[1] is that leaf, 0
	return t
}

// beats reports whether head a comes before head b.
func (t *loserTree) beats(a, b int) bool {
	ha, hb := &t.h[a], &t.h[b]
	if ha.src == nil {
		return false
	}
	if hb.src == nil {
		return true
	}
	return ha.less(hb)
}

// winner returns the index of the smallest head, or -1 when all are
// exhausted.
func (t *loserTree) winner() int {
	w := t.node[0]
	if t.h[w].src == nil {
		return -1
	}
	return w
}

// setPfx records head j's prefix after it changed.
func (t *loserTree) setPfx(j int) {
	t.pfx[j] = t.h[j].pfx
	if t.h[j].src == nil {
		t.pfx[j] = math.MaxUint64
	}
}

// replay re-runs the matches on the path of leaf j (whose head changed).
// Which head wins a match of random keys is a coin toss, which a branch
// mispredicts half the time (a fifth of a 3M random-order ingest's CPU);
// the winner is picked with conditional moves instead, and only equal
// prefixes (rare; and every exhausted head) branch to the full
// comparison.
func (t *loserTree) replay(j int) {
	t.setPfx(j)
	node, pfx := t.node, t.pfx
	w, pw := j, pfx[j]
	for i := (len(t.h) + j) / 2; i >= 1; i /= 2 {
		l := node[i]
		pl := pfx[l]
		lt := pl < pw
		if pl == pw {
			lt = t.beats(l, w)
		}
		nw, nl, np := w, l, pw
		if lt {
			nw, nl, np = l, w, pl
		}
		node[i], w, pw = nl, nw, np
	}
	node[0] = w
}
