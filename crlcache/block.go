package crlcache

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Entries of one CRL generation live in a file of blocks (see genfile.go).
// A block holds the entries whose keys fall between its first key and the
// next block's, in key order, prefix-compressed:
//
//	base     int64 BE    revocation time of the first entry (Unix s)
//	count    uint16 BE
//	entries  count × { shared uvarint, suffixLen uvarint, suffix,
//	                   reason uvarint, revokedAt−base varint }
//	restarts n × uint16 BE   offsets (from the first entry) of every
//	                         restartEvery-th entry, whose shared is 0
//	prefixes n × uint64 BE   prefix() of those entries' keys
//	n        uint16 BE
//	crc      uint32 BE   CRC-32C of everything before it
//
// The restart prefixes lie beside the trailer a lookup reads first, so
// finding the restart point touches those lines and not one line per
// step of the search; the keys are compared only when prefixes are
// equal. Blocks of version 2 files (genMagicV2) have no prefixes.
//
// A key is 0x00 ‖ serial for a certificate of the CRL issuer, or
// 0x01 ‖ SHA-1(issuer DN) (20 bytes) ‖ serial for an entry of an
// indirect CRL that speaks for another issuer (certificateIssuer).
// Serials are the DER INTEGER content octets, compared as bytes.
const (
	restartEvery = 16
	blockTarget  = 4096 - 64 // bytes; one page read per lookup
	blockHeader  = 10
	blockTrailer = 6
	maxKeyLen    = 1 + 20 + 255
)

var (
	errCorruptBlock = errors.New("crlcache: corrupt entry block")
	castagnoli      = crc32.MakeTable(crc32.Castagnoli)
)

// blockWriter encodes sorted entries into one block as they come.
type blockWriter struct {
	buf      []byte // header and entry area
	restarts []uint16
	pfx      []uint64 // prefix() of the restart keys
	prev     []byte
	first    []byte
	base     int64
	n        int
}

// add appends an entry; keys must come in ascending order. It returns the
// encoded size the block would have if finished now.
func (w *blockWriter) add(key []byte, reason uint16, at int64) int {
	if w.n == 0 {
		w.first = append(w.first[:0], key...)
		w.base = at
		w.buf = binary.BigEndian.AppendUint64(w.buf[:0], uint64(at))
		w.buf = append(w.buf, 0, 0) // count, set by finish
		w.restarts, w.pfx = w.restarts[:0], w.pfx[:0]
	}
	shared := 0
	if w.n%restartEvery == 0 {
		w.restarts = append(w.restarts, uint16(len(w.buf)-blockHeader))
		w.pfx = append(w.pfx, prefix(key))
	} else {
		shared = commonPrefix(w.prev, key)
	}
	w.buf = binary.AppendUvarint(w.buf, uint64(shared))
	w.buf = binary.AppendUvarint(w.buf, uint64(len(key)-shared))
	w.buf = append(w.buf, key[shared:]...)
	w.buf = binary.AppendUvarint(w.buf, uint64(reason))
	w.buf = binary.AppendVarint(w.buf, at-w.base)
	w.prev = append(w.prev[:0], key...)
	w.n++
	return len(w.buf) + 10*len(w.restarts) + blockTrailer
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// finish completes the block, returns its encoding (valid until the next
// add) and resets the writer.
func (w *blockWriter) finish() []byte {
	binary.BigEndian.PutUint16(w.buf[8:], uint16(w.n))
	for _, r := range w.restarts {
		w.buf = binary.BigEndian.AppendUint16(w.buf, r)
	}
	for _, p := range w.pfx {
		w.buf = binary.BigEndian.AppendUint64(w.buf, p)
	}
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(w.restarts)))
	w.buf = binary.BigEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
	w.n = 0
	return w.buf
}

// block is a decoded view of an encoded block.
type block struct {
	data     []byte // entry area
	base     int64
	count    int
	restarts []byte // n × uint16
	pfx      []byte // n × uint64; nil in a version 2 block
}

// parseBlock checks a block's checksum and framing.
func parseBlock(v []byte) (block, error) { return parseBlockSum(v, true, true) }

// parseBlockSum is parseBlock, checking the CRC only when check is set
// (a mapped block already checked since the file was opened); pfx tells
// whether the block has restart prefixes (all but version 2 files).
func parseBlockSum(v []byte, check, pfx bool) (block, error) {
	if len(v) < blockHeader+blockTrailer {
		return block{}, errCorruptBlock
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if check && crc32.Checksum(body, castagnoli) != sum {
		return block{}, errCorruptBlock
	}
	n := int(binary.BigEndian.Uint16(body[len(body)-2:]))
	per := 2
	if pfx {
		per = 10
	}
	rs := len(body) - 2 - per*n
	if n == 0 || rs < blockHeader {
		return block{}, errCorruptBlock
	}
	b := block{
		base:     int64(binary.BigEndian.Uint64(body)),
		count:    int(binary.BigEndian.Uint16(body[8:])),
		data:     body[blockHeader:rs],
		restarts: body[rs : rs+2*n],
	}
	if pfx {
		b.pfx = body[rs+2*n : len(body)-2]
	}
	if b.count == 0 || (b.count+restartEvery-1)/restartEvery != n {
		return block{}, errCorruptBlock
	}
	return b, nil
}

// cursor walks the entries of a block.
type cursor struct {
	b      *block
	pos    int
	key    []byte
	reason uint16
	at     int64
}

// next decodes the entry at c.pos; ok is false at the end of the run.
func (c *cursor) next() (bool, error) {
	d := c.b.data
	if c.pos >= len(d) {
		return false, nil
	}
	p := c.pos
	shared, n := binary.Uvarint(d[p:])
	if n <= 0 {
		return false, errCorruptBlock
	}
	p += n
	sl, n := binary.Uvarint(d[p:])
	if n <= 0 || shared > uint64(len(c.key)) || shared+sl > maxKeyLen {
		return false, errCorruptBlock
	}
	p += n
	if uint64(len(d)-p) < sl {
		return false, errCorruptBlock
	}
	c.key = append(c.key[:shared], d[p:p+int(sl)]...)
	p += int(sl)
	r, n := binary.Uvarint(d[p:])
	if n <= 0 || r > 0xffff {
		return false, errCorruptBlock
	}
	p += n
	t, n := binary.Varint(d[p:])
	if n <= 0 || t > 1<<40 || t < -(1<<40) {
		return false, errCorruptBlock
	}
	p += n
	c.reason, c.at, c.pos = uint16(r), c.b.base+t, p
	return true, nil
}

// restart positions c at restart point i.
func (c *cursor) restart(i int) error {
	off := int(binary.BigEndian.Uint16(c.b.restarts[2*i:]))
	if off >= len(c.b.data) {
		return errCorruptBlock
	}
	c.pos, c.key = off, c.key[:0]
	return nil
}

// restartKey returns the key of the entry at restart point i, in place.
func (b *block) restartKey(i int) ([]byte, error) {
	off := int(binary.BigEndian.Uint16(b.restarts[2*i:]))
	if off >= len(b.data) {
		return nil, errCorruptBlock
	}
	d := b.data[off:]
	shared, n := binary.Uvarint(d)
	if n <= 0 || shared != 0 {
		return nil, errCorruptBlock
	}
	sl, m := binary.Uvarint(d[n:])
	if m <= 0 || sl > maxKeyLen || uint64(len(d)-n-m) < sl {
		return nil, errCorruptBlock
	}
	return d[n+m : n+m+int(sl)], nil
}

// find looks key up in the block. scratch is reused for the key buffer.
func (b *block) find(key, scratch []byte) (reason uint16, at int64, found bool, err error) {
	c := cursor{b: b, key: scratch[:0]}
	nr := len(b.restarts) / 2
	// The last restart point whose key is <= key. A restart entry
	// shares nothing with its predecessor, so its key is compared where
	// it lies, without decoding the rest of the entry.
	// With restart prefixes the search reads them, and a restart key
	// only where its prefix equals the key's.
	p := prefix(key)
	lo, hi := 0, nr
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		order := 0
		if b.pfx != nil {
			order = cmp.Compare(binary.BigEndian.Uint64(b.pfx[8*mid:]), p)
		}
		if order == 0 { // no prefixes, or equal ones: compare the keys
			rk, err := b.restartKey(mid)
			if err != nil {
				return 0, 0, false, err
			}
			order = bytes.Compare(rk, key)
		}
		if order <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, 0, false, nil
	}
	if err := c.restart(lo - 1); err != nil {
		return 0, 0, false, err
	}
	for range restartEvery {
		ok, err := c.next()
		if err != nil || !ok {
			return 0, 0, false, err
		}
		switch bytes.Compare(c.key, key) {
		case 0:
			return c.reason, c.at, true, nil
		case 1:
			return 0, 0, false, nil
		}
	}
	return 0, 0, false, nil
}

// each calls fn for every entry of the block in key order.
func (b *block) each(fn func(key []byte, reason uint16, at int64) error) error {
	c := cursor{b: b}
	seen := 0
	for {
		ok, err := c.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		seen++
		if err := fn(c.key, c.reason, c.at); err != nil {
			return err
		}
	}
	if seen != b.count {
		return errCorruptBlock
	}
	return nil
}
