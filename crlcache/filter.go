package crlcache

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// Most checks are of certificates that are not revoked. A generation
// file carries a Bloom filter of its keys so that those answers come
// from one cache line of the filter instead of the block index and a
// block of the entry file (which, on a large CRL, are cold: a TLB and a
// cache miss each).
//
// The filter is a split-block Bloom filter: lines of 64 bytes, eight
// little-endian 64-bit words each. A key's 64-bit hash picks one line
// with its high half and one bit in each of the line's eight words with
// its low half (eight salted multiplications). At filterBitsPerKey bits
// per key about 1% of the absent keys pass the filter and take the
// block path; a key that was added always passes, so the filter can
// only save work, never change an answer. Its CRC-32C is checked when
// the file is opened: a damaged filter could hide a revoked serial.
const (
	filterLineBytes  = 64
	filterBitsPerKey = 10
	maxFilterLines   = 1 << 26 // 4 GiB: far above any CRL's
)

var filterSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// filterLinesFor returns the number of filter lines for n keys (0 for
// none: an empty file needs no filter).
func filterLinesFor(n uint64) int {
	if n == 0 {
		return 0
	}
	return int(min((n*filterBitsPerKey+filterLineBytes*8-1)/(filterLineBytes*8), maxFilterLines))
}

// keyHash is the filter's hash of an entry key. It is part of the file
// format: changing it needs a new genMagic.
func keyHash(key []byte) uint64 {
	h := uint64(len(key)) * 0x9e3779b97f4a7c15
	for len(key) >= 8 {
		h = mix64(h ^ binary.LittleEndian.Uint64(key))
		key = key[8:]
	}
	var t uint64
	for i, b := range key {
		t |= uint64(b) << (8 * i)
	}
	return mix64(h ^ t ^ 0xa0761d6478bd642f)
}

// mix64 is a bijective 64-bit finalizer (MurmurHash3's).
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// filterLine returns the offset of h's line in a filter of lines lines.
func filterLine(h uint64, lines int) int {
	return int((h>>32)*uint64(lines)>>32) * filterLineBytes
}

// filterHas reports whether h may have been added to the filter f (a
// whole number of lines, at least one).
func filterHas(f []byte, h uint64) bool {
	o := filterLine(h, len(f)/filterLineBytes)
	l := f[o : o+filterLineBytes : o+filterLineBytes]
	x := uint32(h)
	var miss uint64
	for i, s := range filterSalts {
		w := binary.LittleEndian.Uint64(l[8*i:])
		miss |= ^w & (1 << ((x * s) >> 26))
	}
	return miss == 0
}

// filterAdd adds h to the filter f.
func filterAdd(f []byte, h uint64) {
	o := filterLine(h, len(f)/filterLineBytes)
	l := f[o : o+filterLineBytes : o+filterLineBytes]
	x := uint32(h)
	for i, s := range filterSalts {
		w := binary.LittleEndian.Uint64(l[8*i:])
		binary.LittleEndian.PutUint64(l[8*i:], w|1<<((x*s)>>26))
	}
}

// filterBuilder is the filter of a generation file being written, shared
// by the writers of its two halves (mergeTwo). Each writer collects key
// hashes in a batch of its own and adds a full batch under the lock, so
// the writers neither race on the filter's words nor take a lock per key.
type filterBuilder struct {
	mu   sync.Mutex
	bits []byte // filter lines, outside the Go heap
	free func()
}

// filterBatch is the number of hashes a writer collects before adding
// them to the filter.
const filterBatch = 1024

// newFilterBuilder returns a builder for a filter sized for n keys, or nil
// when n is 0.
func newFilterBuilder(n uint64) *filterBuilder {
	lines := filterLinesFor(n)
	if lines == 0 {
		return nil
	}
	b, free := offHeap(lines * filterLineBytes)
	return &filterBuilder{bits: b, free: free}
}

// addBatch adds the hashes hs.
func (fb *filterBuilder) addBatch(hs []uint64) {
	fb.mu.Lock()
	for _, h := range hs {
		filterAdd(fb.bits, h)
	}
	fb.mu.Unlock()
}

// release frees the filter's memory.
func (fb *filterBuilder) release() {
	if fb != nil && fb.free != nil {
		fb.free()
		fb.free, fb.bits = nil, nil
	}
}

// checkFilter reads the n bytes of filter at off in r and compares their
// CRC-32C with sum, through a small buffer (not the mapping: a check at
// open must not make the whole filter resident).
func checkFilter(r io.ReaderAt, off, n int64, sum uint32) error {
	buf := make([]byte, min(n, 64<<10))
	var crc uint32
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := r.ReadAt(buf[:k], off); err != nil {
			return err
		}
		crc = crc32.Update(crc, castagnoli, buf[:k])
		off, n = off+k, n-k
	}
	if crc != sum {
		return errCorruptBlock
	}
	return nil
}
