package fetch

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// TransportError is a download that failed below HTTP: the connection was
// refused, timed out, the host is unknown, the network unreachable, a
// redirect was refused or the connection broke while reading. Its code is
// the one GnuPG's dirmngr answers in the same situation (errno-derived
// where GnuPG passes the system error on: ECONNREFUSED → 167804953
// "Connection refused"), and its message names the URL and the cause once,
// in plain words, as GnuPG logs it:
//
//	error retrieving 'http://127.0.0.1:1/ca.crl': Connection refused
type TransportError struct {
	URL  string
	Code gpgerr.Code
	// Connect is true when no connection was established (refused,
	// unreachable, unknown host, connect timeout).
	Connect bool
	// Cause is the cause in plain words (usually Code's text).
	Cause string
}

// Error returns "error retrieving 'URL': cause".
func (e *TransportError) Error() string { return "error retrieving '" + e.URL + "': " + e.Cause }

// Unwrap returns the gpg-error code, so that gpgerr.CodeOf finds it.
func (e *TransportError) Unwrap() error { return e.Code }

// transportError classifies err, returned by the HTTP client for u. A
// cancelled ctx (the client went away) is returned as ctx.Err().
func transportError(ctx context.Context, u string, err error) error {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	te := &TransportError{URL: u}
	te.Code, te.Connect, te.Cause = classify(err)
	if te.Cause == "" {
		te.Cause = te.Code.Error()
	}
	return te
}

// classify maps a Go network error to GnuPG's code and a plain cause.
func classify(err error) (code gpgerr.Code, connect bool, cause string) {
	var ge *gpgerr.Error
	if errors.As(err, &ge) { // a refused redirect (CheckRedirect)
		return ge.Code, false, ge.Code.Error() + " (" + ge.Detail + ")"
	}
	var oe *net.OpError
	dial := errors.As(err, &oe) && oe.Op == "dial"
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsTimeout {
			return gpgerr.ErrTimeout, true, ""
		}
		// GnuPG: "No name" for a host that does not resolve.
		return gpgerr.ErrNoName, true, ""
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		if dial {
			return gpgerr.ErrorFromOS(syscall.ETIMEDOUT).Code, true, ""
		}
		return gpgerr.ErrTimeout, false, "Timeout (no complete answer within the request timeout)"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if c := gpgerr.ErrorFromOS(errno).Code; c != gpgerr.ErrGeneral {
			return c, dial, ""
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return gpgerr.ErrNoData, false, "the server closed the connection"
	}
	return gpgerr.ErrNoData, dial, lastPart(err.Error())
}

// lastPart returns the innermost part of a Go error chain ("a: b: c" →
// "c"), which is the cause; the URL and operation are said by the caller.
func lastPart(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

// Cause returns the cause of a network error in plain words, as
// TransportError says it ("Connection refused", "No name", …), for callers
// that answer with a code of their own (LDAP: No data, as GnuPG).
func Cause(err error) string {
	code, _, cause := classify(err)
	if cause == "" {
		cause = code.Error()
	}
	return cause
}
