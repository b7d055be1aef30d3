package crl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// derReader reads DER TLVs from a stream, counting bytes and optionally
// feeding them to a hash.
type derReader struct {
	r   *bufio.Reader
	n   int64
	max int64
	h   io.Writer // nil: not hashing
	// pend collects the bytes read while hashing, handed to h in large
	// writes (hashTo, flushHash): a few million 2-byte writes of entry
	// headers cost more than the hashing itself.
	pend []byte
	buf  []byte
	hdr  [6]byte
}

// hashChunk is the size of the writes to the TBS hash.
const hashChunk = 64 << 10

// hashTo starts (h != nil) or ends (h == nil, after flushing what is
// pending) feeding the bytes read to h.
func (d *derReader) hashTo(h io.Writer) {
	d.flushHash()
	d.h = h
	if h != nil && d.pend == nil {
		d.pend = make([]byte, 0, 2*hashChunk)
	}
}

// flushHash writes the pending bytes to the hash.
func (d *derReader) flushHash() {
	if d.h != nil && len(d.pend) > 0 {
		d.h.Write(d.pend)
	}
	d.pend = d.pend[:0]
}

// hashed records p (read while hashing) for the hash.
func (d *derReader) hashed(p []byte) {
	if len(p) >= hashChunk {
		d.flushHash()
		d.h.Write(p)
		return
	}
	d.pend = append(d.pend, p...)
	if len(d.pend) >= hashChunk {
		d.flushHash()
	}
}

func (d *derReader) readByte() (byte, error) {
	if d.n >= d.max {
		return 0, ErrTooLarge
	}
	b, err := d.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, errBER("truncated")
		}
		return 0, fmt.Errorf("crl: reading: %w", err)
	}
	d.n++
	if d.h != nil {
		d.pend = append(d.pend, b)
	}
	return b, nil
}

// header reads a tag and a definite length. raw is valid until the next
// call.
func (d *derReader) header() (tag byte, length int64, raw []byte, err error) {
	hdr := &d.hdr
	tag, err = d.readByte()
	if err != nil {
		return
	}
	if tag&0x1f == 0x1f {
		return 0, 0, nil, errBER("high tag numbers are not used in CRLs")
	}
	hdr[0] = tag
	l, err := d.readByte()
	if err != nil {
		return
	}
	hdr[1] = l
	n := 2
	switch {
	case l < 0x80:
		length = int64(l)
	case l == 0x80:
		return 0, 0, nil, errBER("indefinite length")
	default:
		k := int(l & 0x7f)
		if k > 4 {
			return 0, 0, nil, errBER("length field of %d bytes", k)
		}
		for range k {
			b, err := d.readByte()
			if err != nil {
				return 0, 0, nil, err
			}
			hdr[n] = b
			n++
			length = length<<8 | int64(b)
		}
	}
	return tag, length, hdr[:n], nil
}

// body reads length bytes into the reusable buffer.
func (d *derReader) body(length int64, limit int) ([]byte, error) {
	if length > int64(limit) {
		return nil, errBER("element of %d bytes exceeds %d", length, limit)
	}
	if d.n+length > d.max {
		return nil, ErrTooLarge
	}
	if cap(d.buf) < int(length) {
		d.buf = make([]byte, length, max(int(length), 256))
	}
	b := d.buf[:length]
	if _, err := io.ReadFull(d.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errBER("truncated")
		}
		return nil, fmt.Errorf("crl: reading: %w", err)
	}
	d.n += length
	if d.h != nil {
		d.hashed(b)
	}
	return b, nil
}

// element reads one whole TLV of the expected tag and returns its content.
func (d *derReader) element(want byte, limit int, what string) ([]byte, error) {
	tag, l, _, err := d.header()
	if err != nil {
		return nil, err
	}
	if tag != want {
		return nil, errBER("%s: unexpected tag 0x%02x", what, tag)
	}
	return d.body(l, limit)
}
