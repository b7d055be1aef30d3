package crlcache

import (
	"encoding/binary"
	"errors"
)

// The version 1 layout (before several CRLs per issuer) kept each CRL in a
// bbolt bucket "entries"/<generation> of blocks of up to 128 entries keyed
// by their largest serial:
//
//	count   uint16
//	offsets count × uint16 (into the entry area)
//	entries count × { len uint8, serial [len]byte, reason uint16, revoked int64 }
//
// Only the decoder is kept, to migrate such a database (migrate.go).

var errCorruptLegacy = errors.New("crlcache: corrupt version 1 entry block")

// legacyCount returns the number of entries and the start of the entry
// area.
func legacyCount(v []byte) (int, int, error) {
	if len(v) < 2 {
		return 0, 0, errCorruptLegacy
	}
	n := int(binary.BigEndian.Uint16(v))
	base := 2 + 2*n
	if len(v) < base {
		return 0, 0, errCorruptLegacy
	}
	return n, base, nil
}

// blockEntry returns entry i of a block.
func legacyEntry(v []byte, base, i int) (serial []byte, reason uint16, at int64, err error) {
	off := base + int(binary.BigEndian.Uint16(v[2+2*i:]))
	if off >= len(v) {
		return nil, 0, 0, errCorruptLegacy
	}
	l := int(v[off])
	end := off + 1 + l + 10
	if end > len(v) {
		return nil, 0, 0, errCorruptLegacy
	}
	serial = v[off+1 : off+1+l]
	reason = binary.BigEndian.Uint16(v[off+1+l:])
	at = int64(binary.BigEndian.Uint64(v[off+3+l:]))
	return serial, reason, at, nil
}

// legacyEach calls fn for every entry of a block in order.
func legacyEach(v []byte, fn func(serial []byte, reason uint16, at int64) error) error {
	n, base, err := legacyCount(v)
	if err != nil {
		return err
	}
	for i := range n {
		s, r, at, err := legacyEntry(v, base, i)
		if err != nil {
			return err
		}
		if err := fn(s, r, at); err != nil {
			return err
		}
	}
	return nil
}
