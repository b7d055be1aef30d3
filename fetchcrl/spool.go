package fetchcrl

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// Downloads are never held in memory: each is spooled to a temporary
// file next to the output (unlinked at once, so that nothing is left
// behind whatever happens), then parsed and copied from there. Memory per
// fetch is a few buffers whatever the body; disk is bounded by
// maxCRLBytes, and bodies that cannot be a CRL stop early (see spoolMax).

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

// errSniffed stops the sniffing parse at the first entry.
var errSniffed = errors.New("fetchcrl: the body starts like a CRL")

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

// spool copies r into a new body in dir, at most maxCRLBytes.
func spool(dir string, r io.Reader) (*body, error) { return spoolMax(dir, r, maxCRLBytes) }

// spoolMax copies r into a new body in dir, at most max bytes, but stops
// as soon as the body cannot be a CRL: the first bytes go through the CRL
// parser up to the first revoked entry, so an endless text body, a
// compressed body or /dev/zero costs what was read until the parser
// refused it (about 1 MiB at most), not max. What was read is then the
// body, and the verification reports the problem as it does for any
// download that is no CRL. Transport and size errors are returned.
func spoolMax(dir string, r io.Reader, max int64) (*body, error) {
	f, err := tempFile(dir)
	if err != nil {
		return nil, err
	}
	s := &spooler{b: &body{f: f}}
	lr := io.LimitReader(r, max+1)
	_, err = crl.Parse(io.TeeReader(lr, s), crl.Limits{MaxBytes: max}, func(*crl.Entry) error { return errSniffed })
	switch gpgerr.CodeOf(err) {
	case gpgerr.ErrNoError:
	case gpgerr.ErrBadBER, gpgerr.ErrInvCRL, gpgerr.ErrInvCRLObj, gpgerr.ErrUnsupportedCRLVersion, gpgerr.ErrUnknownCritExtn:
		return s.b, nil // not a CRL: verify says so
	default:
		if !errors.Is(err, errSniffed) {
			f.Close()
			return nil, err // transport, size, disk
		}
	}
	if _, err := io.Copy(s, lr); err != nil {
		f.Close()
		return nil, err
	}
	if s.b.size > max {
		f.Close()
		return nil, fetch.ErrTooLarge
	}
	return s.b, nil
}

// spooler writes a body to its file, summing it.
type spooler struct{ b *body }

func (s *spooler) Write(p []byte) (int, error) {
	n, err := s.b.f.Write(p)
	for _, c := range p[:n] {
		s.b.sum += uint32(c) // wraps as Perl's %32C*
	}
	s.b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("cannot spool the download: %w", err)
	}
	return n, nil
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
