package fetchcrl

import (
	"bytes"
	"errors"
	"io"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// errSniffed stops the sniffing parse at the first entry.
var errSniffed = errors.New("fetchcrl: the body starts like a CRL")

// readCRLBody reads a downloaded CRL (at most max bytes), but stops as
// soon as the body cannot be one: the first bytes go through the CRL
// parser up to the first revoked entry, so an endless text body, a
// compressed body or /dev/urandom costs what was read until the parser
// refused it (at most 1 MiB), not max. What was read is then returned
// without error and the verification reports the problem as usual.
// Transport and size errors are returned as io.ReadAll would.
func readCRLBody(r io.Reader, max int64) ([]byte, error) {
	var buf bytes.Buffer
	lr := io.LimitReader(r, max+1)
	_, err := crl.Parse(io.TeeReader(lr, &buf), crl.Limits{MaxBytes: max}, func(*crl.Entry) error { return errSniffed })
	switch gpgerr.CodeOf(err) {
	case gpgerr.ErrNoError:
	case gpgerr.ErrBadBER, gpgerr.ErrInvCRL, gpgerr.ErrInvCRLObj, gpgerr.ErrUnsupportedCRLVersion, gpgerr.ErrUnknownCritExtn:
		return buf.Bytes(), nil // not a CRL: verify says so
	default:
		if !errors.Is(err, errSniffed) {
			return nil, err // transport, size
		}
	}
	if _, err := buf.ReadFrom(lr); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, fetch.ErrTooLarge
	}
	return buf.Bytes(), nil
}
