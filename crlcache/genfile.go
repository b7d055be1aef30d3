package crlcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// A generation file ("crl-<generation>.blk" in the cache directory) holds
// the entries of one CRL, written once in key order and never changed:
//
//	blocks   back to back (block.go)
//	filter   Bloom filter of the keys, in 64-byte lines, a run of lines
//	         per block (filter.go)
//	index    per block: uvarint len(first key), first key, uint64 BE
//	         offset, uint32 BE first filter line of the block's run
//	trailer  uint64 BE index offset, uint32 BE blocks, uint64 BE entries,
//	         uint32 BE CRC-32C of the index, uint32 BE filter lines,
//	         uint32 BE CRC-32C of the filter, 8 bytes genMagic
//
// Files of the previous version (genMagicV2) have no filter, blocks
// without restart prefixes (block.go), index entries without the filter
// line and a trailer without the filter's two fields; they are read as
// they are.
//
// The index is read into memory when the file is opened (about 45 bytes
// per 4 KB block with the first keys' prefixes and filter lines), and the
// filter's CRC is checked then; a lookup is a binary search in memory,
// one line of the filter and, for a key it does not rule out, one block
// of the mapping.
const (
	genMagic      = "DMCRLv3\n"
	genMagicV2    = "DMCRLv2\n"
	genTrailer    = 40
	genTrailerV2  = 32
	maxIndexBytes = 256 << 20
)

// genWriter writes a generation file from entries in ascending key order.
type genWriter struct {
	f       *os.File
	w       *bufio.Writer
	off     int64
	bw      blockWriter
	index   []byte
	blocks  uint32
	entries uint64
	last    []byte
	started bool
	filt    *filterBuf // nil: the file gets no filter
	hs      []uint64   // key hashes of the block being written
}

func newGenWriter(f *os.File) *genWriter {
	return &genWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}
}

// add appends one entry. It refuses keys out of order and duplicates.
func (g *genWriter) add(key []byte, reason uint16, at int64) error {
	if g.started {
		switch bytes.Compare(key, g.last) {
		case 0:
			return fmt.Errorf("%w: %X", ErrDuplicate, keySerial(key))
		case -1:
			return fmt.Errorf("crlcache: internal error: entries out of order")
		}
	}
	g.started = true
	g.last = append(g.last[:0], key...)
	if g.filt != nil {
		g.hs = append(g.hs, keyHash(key))
	}
	g.entries++
	if g.bw.add(key, reason, at) >= blockTarget {
		return g.flushBlock()
	}
	return nil
}

func (g *genWriter) flushBlock() error {
	if g.bw.n == 0 {
		return nil
	}
	g.index = binary.AppendUvarint(g.index, uint64(len(g.bw.first)))
	g.index = append(g.index, g.bw.first...)
	g.index = binary.BigEndian.AppendUint64(g.index, uint64(g.off))
	var start uint32
	if g.filt != nil {
		var err error
		if start, err = g.filt.addBlock(g.hs); err != nil {
			return err
		}
		g.hs = g.hs[:0]
	}
	g.index = binary.BigEndian.AppendUint32(g.index, start)
	b := g.bw.finish()
	if _, err := g.w.Write(b); err != nil {
		return fmt.Errorf("crlcache: writing entries: %w", err)
	}
	g.off += int64(len(b))
	g.blocks++
	return nil
}

// finish writes the filter, the index and the trailer and syncs the file.
func (g *genWriter) finish() error {
	if err := g.flushBlock(); err != nil {
		return err
	}
	var lines int
	var fsum uint32
	if g.filt != nil {
		lines = g.filt.total()
		var err error
		if fsum, err = g.filt.writeTo(g.w); err != nil {
			return err
		}
	}
	ixOff := g.off + int64(lines)*filterLineBytes
	t := binary.BigEndian.AppendUint64(nil, uint64(ixOff))
	t = binary.BigEndian.AppendUint32(t, g.blocks)
	t = binary.BigEndian.AppendUint64(t, g.entries)
	t = binary.BigEndian.AppendUint32(t, crc32.Checksum(g.index, castagnoli))
	t = binary.BigEndian.AppendUint32(t, uint32(lines))
	t = binary.BigEndian.AppendUint32(t, fsum)
	t = append(t, genMagic...)
	if _, err := g.w.Write(g.index); err != nil {
		return fmt.Errorf("crlcache: writing entry index: %w", err)
	}
	if _, err := g.w.Write(t); err != nil {
		return fmt.Errorf("crlcache: writing entry index: %w", err)
	}
	if err := g.w.Flush(); err != nil {
		return fmt.Errorf("crlcache: writing entries: %w", err)
	}
	if err := g.f.Sync(); err != nil {
		return fmt.Errorf("crlcache: syncing entries: %w", err)
	}
	return nil
}

// genFile is an open generation file. It is shared by concurrent lookups
// and closed when the last reference goes (refs starts at 1, the cache's).
type genFile struct {
	f       *os.File
	m       []byte          // the file mapped read-only (nil: read with pread); see mapGen
	checked []atomic.Uint64 // with m: bit i set once block i's CRC matched
	path    string
	keys    []byte   // first keys of the blocks, concatenated
	keyOff  []uint32 // start of block i's first key in keys; len = blocks+1
	keyPfx  []uint64 // prefix() of block i's first key: the lookup's binary search reads one array, one cache line per step
	offs    []int64  // block offsets; len = blocks+1 (last = end of the blocks)
	filtLen int64    // bytes of filter after the blocks (0: none)
	fstart  []uint32 // block i's filter lines are fstart[i] to fstart[i+1] (with a filter); len = blocks+1
	v2      bool     // a version 2 file: blocks without restart prefixes
	filt    []byte   // the filter in the mapping (nil: none, or not mapped)
	entries uint64
	refs    atomic.Int64
}

// openGen opens a generation file and reads its index.
func openGen(path string) (*genFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	g, err := readIndex(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("crlcache: %s: %w", path, err)
	}
	g.f, g.path = f, path
	end := g.offs[len(g.offs)-1]
	if g.m = mapGen(f, end+g.filtLen); g.m != nil {
		g.checked = make([]atomic.Uint64, (g.blocks()+63)/64)
		if g.filtLen > 0 {
			g.filt = g.m[end : end+g.filtLen : end+g.filtLen]
		}
	}
	g.refs.Store(1)
	return g, nil
}

// readIndex checks the trailer and reads the block index of a file of
// size bytes, and checks its filter.
func readIndex(f io.ReaderAt, size int64) (*genFile, error) {
	if size < genTrailerV2 {
		return nil, errCorruptBlock
	}
	var m [8]byte
	if _, err := f.ReadAt(m[:], size-8); err != nil {
		return nil, err
	}
	tl := int64(genTrailer)
	switch string(m[:]) {
	case genMagic:
		if size < genTrailer {
			return nil, errCorruptBlock
		}
	case genMagicV2:
		tl = genTrailerV2
	default:
		return nil, errCorruptBlock
	}
	t := make([]byte, tl)
	if _, err := f.ReadAt(t, size-tl); err != nil {
		return nil, err
	}
	ixOff := int64(binary.BigEndian.Uint64(t[0:]))
	blocks := int(binary.BigEndian.Uint32(t[8:]))
	entries := binary.BigEndian.Uint64(t[12:])
	sum := binary.BigEndian.Uint32(t[20:])
	var filtLen int64
	var fsum uint32
	if tl == genTrailer {
		filtLen = int64(binary.BigEndian.Uint32(t[24:])) * filterLineBytes
		fsum = binary.BigEndian.Uint32(t[28:])
	}
	ixLen := size - tl - ixOff
	if ixOff < 0 || ixLen < 0 || ixLen > maxIndexBytes || int64(blocks) > ixLen || filtLen > ixOff {
		return nil, errCorruptBlock
	}
	ix := make([]byte, ixLen)
	if _, err := f.ReadAt(ix, ixOff); err != nil && err != io.EOF {
		return nil, err
	}
	if crc32.Checksum(ix, castagnoli) != sum {
		return nil, errCorruptBlock
	}
	if filtLen > 0 {
		if err := checkFilter(f, ixOff-filtLen, filtLen, fsum); err != nil {
			return nil, err
		}
	}
	g := &genFile{entries: entries, filtLen: filtLen, v2: tl == genTrailerV2, keyOff: make([]uint32, 0, blocks+1), offs: make([]int64, 0, blocks+1)}
	if err := g.parseIndex(ix, blocks, ixOff-filtLen, uint32(filtLen/filterLineBytes)); err != nil {
		return nil, err
	}
	return g, nil
}

// parseIndex decodes the block index; offsets must increase, and with a
// filter of lines lines every block must have a run of lines, in order.
func (g *genFile) parseIndex(ix []byte, blocks int, end int64, lines uint32) error {
	prev := int64(-1)
	entry := 8 // offset
	if !g.v2 {
		entry += 4 // and first filter line
	}
	if lines > 0 {
		g.fstart = make([]uint32, 0, blocks+1)
	}
	for range blocks {
		l, n := binary.Uvarint(ix)
		if n <= 0 || l == 0 || l > maxKeyLen || uint64(len(ix)-n) < l+uint64(entry) {
			return errCorruptBlock
		}
		ix = ix[n:]
		g.keyOff = append(g.keyOff, uint32(len(g.keys)))
		g.keys = append(g.keys, ix[:l]...)
		off := int64(binary.BigEndian.Uint64(ix[l:]))
		if lines > 0 {
			start := binary.BigEndian.Uint32(ix[l+8:])
			if k := len(g.fstart); (k == 0 && start != 0) || (k > 0 && start <= g.fstart[k-1]) || start >= lines {
				return errCorruptBlock
			}
			g.fstart = append(g.fstart, start)
		}
		ix = ix[l+uint64(entry):]
		if off <= prev || off >= end || (prev < 0 && off != 0) {
			return errCorruptBlock
		}
		g.offs = append(g.offs, off)
		prev = off
	}
	if len(ix) != 0 || (lines > 0 && blocks == 0) {
		return errCorruptBlock
	}
	if lines > 0 {
		g.fstart = append(g.fstart, lines)
	}
	g.keyOff = append(g.keyOff, uint32(len(g.keys)))
	g.offs = append(g.offs, end)
	g.keyPfx = make([]uint64, blocks)
	for i := range blocks {
		g.keyPfx[i] = prefix(g.firstKey(i))
	}
	return nil
}

func (g *genFile) blocks() int { return len(g.offs) - 1 }

func (g *genFile) firstKey(i int) []byte { return g.keys[g.keyOff[i]:g.keyOff[i+1]] }

// release drops a reference; the last one closes the file.
func (g *genFile) release() {
	if g.refs.Add(-1) == 0 {
		unmapGen(g.m)
		g.f.Close()
	}
}

// readBlock reads and checks block i, into buf unless mapped is set and
// the file is mapped (the block then refers to the mapping, buf is
// returned as is).
func (g *genFile) readBlock(i int, buf []byte, mapped bool) (block, []byte, error) {
	n := g.offs[i+1] - g.offs[i]
	if n > 1<<16+blockHeader+blockTrailer {
		return block{}, buf, errCorruptBlock
	}
	if mapped && g.m != nil {
		// The file is immutable: a block's CRC is checked on its
		// first lookup after open, not on every one.
		w, bit := &g.checked[i/64], uint64(1)<<(i%64)
		seen := w.Load()&bit != 0
		b, err := parseBlockSum(g.m[g.offs[i]:g.offs[i+1]:g.offs[i+1]], !seen, !g.v2)
		if err == nil && !seen {
			w.Or(bit)
		}
		return b, buf, err
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := g.f.ReadAt(buf, g.offs[i]); err != nil {
		return block{}, buf, fmt.Errorf("crlcache: reading %s: %w", g.path, err)
	}
	b, err := parseBlockSum(buf, true, !g.v2)
	return b, buf, err
}

// scratch holds a lookup's buffers (pooled: no allocation per lookup).
type scratch struct {
	key, blk, tmp []byte
	b             block // the block read, parsed (refers to blk)
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{key: make([]byte, 0, maxKeyLen), blk: make([]byte, 0, blockTarget+512), tmp: make([]byte, 0, maxKeyLen)}
}}

// lookup finds key: one binary search in memory, one line of the
// block's filter, and for a key the filter does not rule out one read.
func (g *genFile) lookup(key []byte, sc *scratch) (reason uint16, at int64, found bool, err error) {
	if g.m != nil {
		defer faultAsError(debug.SetPanicOnFault(true), g.path, &err)
	}
	i := g.findBlock(key) - 1
	if i < 0 {
		return 0, 0, false, nil
	}
	if g.filt != nil {
		run := g.filt[int(g.fstart[i])*filterLineBytes : int(g.fstart[i+1])*filterLineBytes]
		if !filterHas(run, keyHash(key)) {
			return 0, 0, false, nil
		}
	}
	// The block lives in the pooled scratch: find's cursor makes a
	// local block escape, which would cost an allocation per lookup.
	sc.b, sc.blk, err = g.readBlock(i, sc.blk, true)
	if err != nil {
		return 0, 0, false, err
	}
	return sc.b.find(key, sc.tmp)
}

// findBlock returns the first block whose first key is above key
// (blocks() when none is): a binary search on the first keys' prefixes,
// comparing whole keys only when the prefixes are equal.
func (g *genFile) findBlock(key []byte) int {
	p := prefix(key)
	lo, hi := 0, len(g.keyPfx)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		q := g.keyPfx[mid]
		if q > p || (q == p && bytes.Compare(g.firstKey(mid), key) > 0) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// each calls fn for every entry in key order. It reads with pread, not
// through the mapping: a whole-file scan (LISTCRLS) would otherwise
// leave every page of the file resident in the daemon's RSS.
func (g *genFile) each(fn func(key []byte, reason uint16, at int64) error) error {
	var buf []byte
	var seen uint64
	for i := range g.blocks() {
		b, nb, err := g.readBlock(i, buf, false)
		buf = nb
		if err != nil {
			return err
		}
		if err := b.each(func(k []byte, r uint16, at int64) error {
			seen++
			return fn(k, r, at)
		}); err != nil {
			return err
		}
	}
	if seen != g.entries {
		return errCorruptBlock
	}
	return nil
}

// Entry keys (see block.go).
const (
	tagOwn      = 0x00
	tagIndirect = 0x01
)

// appendKey appends the entry key of serial for certificates of
// certIssuer (20 raw bytes, nil for the CRL issuer itself).
func appendKey(dst, certIssuer, serial []byte) []byte {
	if certIssuer == nil {
		dst = append(dst, tagOwn)
	} else {
		dst = append(dst, tagIndirect)
		dst = append(dst, certIssuer...)
	}
	return append(dst, serial...)
}

// keySerial splits a key into certificate issuer (nil: the CRL's own) and
// serial.
func keySerial(key []byte) []byte {
	_, s := splitKey(key)
	return s
}

func splitKey(key []byte) (certIssuer, serial []byte) {
	if len(key) > 21 && key[0] == tagIndirect {
		return key[1:21], key[21:]
	}
	if len(key) > 0 {
		return nil, key[1:]
	}
	return nil, nil
}
