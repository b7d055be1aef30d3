package crlcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"
)

// Entries are stored in blocks of up to blockEntries serials, sorted by
// serial (bytes.Compare order). A block's key is its largest serial, so
// the block that may hold serial s is the first one whose key is >= s: a
// lookup is one cursor seek plus a binary search inside one block.
//
// Block value layout:
//
//	count   uint16
//	offsets count × uint16 (into the entry area)
//	entries count × { len uint8, serial [len]byte, reason uint16, revoked int64 }
const blockEntries = 128

var errCorruptBlock = errors.New("crlcache: corrupt entry block")

// entryRef is an entry in a batch: its serial lives in an arena.
type entryRef struct {
	serial []byte
	reason uint16
	at     int64
}

func encodeBlock(dst []byte, es []entryRef) []byte {
	n := len(es)
	dst = binary.BigEndian.AppendUint16(dst[:0], uint16(n))
	off := 0
	for _, e := range es {
		dst = binary.BigEndian.AppendUint16(dst, uint16(off))
		off += 1 + len(e.serial) + 10
	}
	for _, e := range es {
		dst = append(dst, byte(len(e.serial)))
		dst = append(dst, e.serial...)
		dst = binary.BigEndian.AppendUint16(dst, e.reason)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.at))
	}
	return dst
}

// blockCount returns the number of entries and the start of the entry
// area.
func blockCount(v []byte) (int, int, error) {
	if len(v) < 2 {
		return 0, 0, errCorruptBlock
	}
	n := int(binary.BigEndian.Uint16(v))
	base := 2 + 2*n
	if len(v) < base {
		return 0, 0, errCorruptBlock
	}
	return n, base, nil
}

// blockEntry returns entry i of a block.
func blockEntry(v []byte, base, i int) (serial []byte, reason uint16, at int64, err error) {
	off := base + int(binary.BigEndian.Uint16(v[2+2*i:]))
	if off >= len(v) {
		return nil, 0, 0, errCorruptBlock
	}
	l := int(v[off])
	end := off + 1 + l + 10
	if end > len(v) {
		return nil, 0, 0, errCorruptBlock
	}
	serial = v[off+1 : off+1+l]
	reason = binary.BigEndian.Uint16(v[off+1+l:])
	at = int64(binary.BigEndian.Uint64(v[off+3+l:]))
	return serial, reason, at, nil
}

// blockFind binary-searches serial in a block without allocating.
func blockFind(v, serial []byte) (Entry, bool, error) {
	n, base, err := blockCount(v)
	if err != nil {
		return Entry{}, false, err
	}
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		s, reason, at, err := blockEntry(v, base, mid)
		if err != nil {
			return Entry{}, false, err
		}
		switch c := bytes.Compare(s, serial); {
		case c == 0:
			return Entry{Reason: reason, RevokedAt: time.Unix(at, 0).UTC()}, true, nil
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return Entry{}, false, nil
}

// blockEach calls fn for every entry of a block in order.
func blockEach(v []byte, fn func(serial []byte, reason uint16, at int64) error) error {
	n, base, err := blockCount(v)
	if err != nil {
		return err
	}
	for i := range n {
		s, r, at, err := blockEntry(v, base, i)
		if err != nil {
			return err
		}
		if err := fn(s, r, at); err != nil {
			return err
		}
	}
	return nil
}
