package fetchcrl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dirmngr/dirmngr/fetch"
)

// Downloads are never held in memory: each is spooled to a temporary
// file next to the output (unlinked at once, so that nothing is left
// behind whatever happens), then parsed and copied from there. Memory per
// fetch is a few buffers whatever the body; disk is bounded by
// maxCRLBytes, and bodies that cannot be a CRL stop early (see spooler).

// body is one spooled download.
type body struct {
	f    *os.File // unlinked; read with ReadAt
	size int64
	sum  uint32 // byte sum modulo 2^32
}

// perlSum is fetch-crl's state checksum of the body.
func (b *body) perlSum() uint32 { return b.sum % 65535 }

// reader reads the whole body from its start.
func (b *body) reader() io.Reader { return io.NewSectionReader(b.f, 0, b.size) }

// close releases the file (and so its disk space).
func (b *body) close() {
	if b != nil && b.f != nil {
		b.f.Close()
		b.f = nil
	}
}

// maxPEMPrefix bounds the bytes of a body not starting with a DER
// SEQUENCE read before a "-----BEGIN X509 CRL-----" line must have begun.
const maxPEMPrefix = 1 << 20

// maxDERTrailer bounds the bytes read past a DER CRL's declared length.
const maxDERTrailer = 1 << 20

// errNoCRL stops a body that has no PEM CRL where one must be.
var errNoCRL = fmt.Errorf("no CRL in the first %d bytes", maxPEMPrefix)

// tempFile creates an unlinked temporary file in dir (or the system's
// temporary directory when dir is not writable).
func tempFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, ".fetch-crl-*.tmp")
	if err != nil {
		if f, err = os.CreateTemp("", ".fetch-crl-*.tmp"); err != nil {
			return nil, fmt.Errorf("cannot create a temporary file: %w", err)
		}
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot unlink %s: %w", f.Name(), err)
	}
	return f, nil
}

// spool copies r into a new body in dir. It fails past maxCRLBytes, past
// a DER CRL's declared length (plus maxDERTrailer), and when a body that
// is not DER shows no PEM CRL in its first maxPEMPrefix bytes: an endless
// or compressed body costs at most that much disk, and no memory.
func spool(dir string, r io.Reader) (*body, error) {
	f, err := tempFile(dir)
	if err != nil {
		return nil, err
	}
	s := &spooler{b: &body{f: f}, limit: maxCRLBytes}
	if _, err := io.Copy(s, r); err != nil {
		f.Close()
		return nil, err
	}
	return s.b, nil
}

// spooler writes a body to its file, summing and sniffing it.
type spooler struct {
	b       *body
	limit   int64  // most bytes accepted
	head    []byte // the first bytes, until sniffed
	sniffed bool
}

func (s *spooler) Write(p []byte) (int, error) {
	if s.b.size+int64(len(p)) > s.limit {
		return 0, fetch.ErrTooLarge
	}
	n, err := s.b.f.Write(p)
	for _, c := range p[:n] {
		s.b.sum += uint32(c) // wraps as Perl's %32C*
	}
	s.b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("cannot spool the download: %w", err)
	}
	if s.sniffed || n == 0 {
		return n, nil
	}
	if s.head == nil && p[0] != 0x30 {
		s.head = make([]byte, 0, maxPEMPrefix+64)
	}
	s.head = append(s.head, p[:min(n, maxPEMPrefix+64-len(s.head))]...)
	return n, s.sniff()
}

// sniff applies the early stops once enough of the body is known.
func (s *spooler) sniff() error {
	if s.head[0] == 0x30 {
		if len(s.head) < 6 {
			return nil
		}
		s.sniffed = true
		l, ok := derLength(s.head)
		s.head = nil
		if ok && l > maxCRLBytes {
			return fetch.ErrTooLarge
		}
		if ok {
			s.limit = min(s.limit, l+maxDERTrailer)
		}
		return nil
	}
	if len(s.head) < cap(s.head) {
		return nil
	}
	s.sniffed = true
	head := bytes.ReplaceAll(s.head, []byte("\r\n"), []byte("\n"))
	s.head = nil
	i := bytes.Index(head, []byte("\n"+pemBegin))
	if !bytes.HasPrefix(head, []byte(pemBegin)) && (i < 0 || i >= maxPEMPrefix) {
		return errNoCRL
	}
	return nil
}

// derLength is the total length a DER header declares.
func derLength(h []byte) (int64, bool) {
	if len(h) < 2 {
		return 0, false
	}
	l := int64(h[1])
	if l < 0x80 {
		return 2 + l, true
	}
	k := int(l & 0x7f)
	if k == 0 || k > 4 || len(h) < 2+k {
		return 0, false
	}
	l = 0
	for _, c := range h[2 : 2+k] {
		l = l<<8 | int64(c)
	}
	return int64(2+k) + l, true
}

// decodeBase64 spools the base64 text of r (a state file's b64data) as a
// body.
func decodeBase64(dir string, r io.Reader) (*body, error) {
	b, err := spool(dir, base64.NewDecoder(base64.StdEncoding, r))
	var ce base64.CorruptInputError
	if errors.As(err, &ce) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("illegal base64 data: %w", err)
	}
	return b, err
}
