package crlcache

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Most checks are of certificates that are not revoked. A generation
// file carries a Bloom filter of its keys so that those answers come
// from one cache line of the filter instead of a block of the entry file
// (which, on a large CRL, is cold: a TLB and a cache miss or more).
//
// The filter is split by block: each block's keys have a run of 64-byte
// lines of their own (about filterBitsPerKey bits per key, at least one
// line), the runs back to back in block order. So the filter is written
// in key order like the blocks, one block's lines at a time (a few
// hundred bytes, in the processor's cache), instead of with a random
// access to a large array per key, which cost a memory miss per key and
// a third of a large ingest's time. A lookup finds the block in the
// in-memory index first, as it would anyway for a listed key.
//
// Within a block's run a key's 64-bit hash picks one line with its high
// half and one bit in each of the line's eight little-endian 64-bit words
// with its low half (eight salted multiplications: a split-block Bloom
// filter). About 1% of absent keys pass the filter and take the block
// path; a key that was added always passes, so the filter can only save
// work, never change an answer. Its CRC-32C is checked when the file is
// opened: a damaged filter could hide a revoked serial.
const (
	filterLineBytes  = 64
	filterBitsPerKey = 10
)

var filterSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

// filterLinesFor returns the number of filter lines for a block of n
// keys: at least one.
func filterLinesFor(n int) int {
	return max(1, (n*filterBitsPerKey+filterLineBytes*8-1)/(filterLineBytes*8))
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

// filterLine returns the offset of h's line in a run of lines lines.
func filterLine(h uint64, lines int) int {
	return int((h>>32)*uint64(lines)>>32) * filterLineBytes
}

// filterHas reports whether h may have been added to the run of lines f
// (a whole number of lines, at least one).
func filterHas(f []byte, h uint64) bool {
	o := filterLine(h, len(f)/filterLineBytes)
	l := f[o : o+filterLineBytes : o+filterLineBytes]
	x := uint32(h)
	w := func(i int) uint64 { return binary.LittleEndian.Uint64(l[8*i:]) }
	miss := ^w(0)&(1<<((x*filterSalts[0])>>26)) |
		^w(1)&(1<<((x*filterSalts[1])>>26)) |
		^w(2)&(1<<((x*filterSalts[2])>>26)) |
		^w(3)&(1<<((x*filterSalts[3])>>26)) |
		^w(4)&(1<<((x*filterSalts[4])>>26)) |
		^w(5)&(1<<((x*filterSalts[5])>>26)) |
		^w(6)&(1<<((x*filterSalts[6])>>26)) |
		^w(7)&(1<<((x*filterSalts[7])>>26))
	return miss == 0
}

// filterAdd adds h to the run of lines f.
func filterAdd(f []byte, h uint64) {
	o := filterLine(h, len(f)/filterLineBytes)
	l := f[o : o+filterLineBytes : o+filterLineBytes]
	x := uint32(h)
	set := func(i int, s uint32) {
		binary.LittleEndian.PutUint64(l[8*i:], binary.LittleEndian.Uint64(l[8*i:])|1<<((x*s)>>26))
	}
	set(0, filterSalts[0])
	set(1, filterSalts[1])
	set(2, filterSalts[2])
	set(3, filterSalts[3])
	set(4, filterSalts[4])
	set(5, filterSalts[5])
	set(6, filterSalts[6])
	set(7, filterSalts[7])
}

// filterBuf is the filter of a generation file being written: the
// blocks' runs of lines, appended in block order. At most spillChunk
// lines are held in memory (outside the Go heap); the rest go to an
// unlinked temporary file, copied into the generation file after the
// blocks (genWriter.finish). So the filter costs a load no memory that
// grows with the CRL.
type filterBuf struct {
	bits  []byte // spillChunk lines; the first lines are used
	lines int    // lines in bits
	base  int    // lines before them, written to spill
	spill *os.File
	free  func()
}

// spillChunk is the memory of a filterBuf, in lines (64 KB).
const spillChunk = 1024

// newFilterBuf returns a filter buffer that writes to f.
func newFilterBuf(f *os.File) *filterBuf {
	b, free := offHeap(spillChunk * filterLineBytes)
	return &filterBuf{bits: b, free: free, spill: f}
}

// addBlock appends the run of lines of a block whose keys hash to hs and
// returns its first line.
func (fb *filterBuf) addBlock(hs []uint64) (start uint32, err error) {
	n := filterLinesFor(len(hs))
	if fb.lines+n > len(fb.bits)/filterLineBytes {
		if err := fb.flush(); err != nil {
			return 0, err
		}
		if n > len(fb.bits)/filterLineBytes { // cannot happen: a block's run is a few lines
			return 0, errCorruptBlock
		}
	}
	run := fb.bits[fb.lines*filterLineBytes : (fb.lines+n)*filterLineBytes]
	clear(run) // the buffer's lines are reused
	for _, h := range hs {
		filterAdd(run, h)
	}
	start = uint32(fb.base + fb.lines)
	fb.lines += n
	return start, nil
}

// flush writes the lines in memory to the file.
func (fb *filterBuf) flush() error {
	if fb.lines == 0 {
		return nil
	}
	if _, err := fb.spill.WriteAt(fb.bits[:fb.lines*filterLineBytes], int64(fb.base)*filterLineBytes); err != nil {
		return fmt.Errorf("crlcache: writing the entry filter: %w", err)
	}
	fb.base += fb.lines
	fb.lines = 0
	return nil
}

// total is the number of lines added.
func (fb *filterBuf) total() int { return fb.base + fb.lines }

// appendFrom appends o's lines (the upper half of a merge).
func (fb *filterBuf) appendFrom(o *filterBuf) error {
	if err := fb.flush(); err != nil {
		return err
	}
	if err := o.flush(); err != nil {
		return err
	}
	n := int64(o.total()) * filterLineBytes
	if _, err := io.Copy(io.NewOffsetWriter(fb.spill, int64(fb.base)*filterLineBytes), io.NewSectionReader(o.spill, 0, n)); err != nil {
		return fmt.Errorf("crlcache: writing the entry filter: %w", err)
	}
	fb.base += o.total()
	return nil
}

// writeTo flushes the filter and copies it to w; it returns the CRC-32C
// of the lines.
func (fb *filterBuf) writeTo(w io.Writer) (uint32, error) {
	if err := fb.flush(); err != nil {
		return 0, err
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(fb.spill, 0, int64(fb.base)*filterLineBytes)); err != nil {
		return 0, fmt.Errorf("crlcache: writing the entry filter: %w", err)
	}
	return h.Sum32(), nil
}

// release frees the buffer and closes its file.
func (fb *filterBuf) release() {
	if fb == nil {
		return
	}
	if fb.free != nil {
		fb.free()
		fb.free, fb.bits = nil, nil
	}
	if fb.spill != nil {
		fb.spill.Close()
		fb.spill = nil
	}
}

// newFilterIn returns a filter buffer writing to an unlinked temporary
// file in dir (gone with the process, even after kill -9).
func newFilterIn(dir string) (*filterBuf, error) {
	f, err := os.CreateTemp(dir, "filter-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("crlcache: creating the filter's temporary file: %w", err)
	}
	os.Remove(f.Name())
	return newFilterBuf(f), nil
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
