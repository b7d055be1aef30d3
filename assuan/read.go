package assuan

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// readLine reads one line (without LF and a preceding CR), waiting at
// most timeout (0: for ever) for it.
func (s *Session) readLine(timeout time.Duration) (string, error) {
	want := s.armRead(timeout)
	s.carry = s.carry[:0] // a line's start read before an early deadline
	var b []byte
	for {
		var err error
		b, err = s.r.ReadSlice('\n')
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", ErrLineTooLong
		}
		if s.rearm(err, want) {
			if s.carry = append(s.carry, b...); len(s.carry) > MaxLineLength {
				return "", ErrLineTooLong
			}
			continue
		}
		if (len(b) > 0 || len(s.carry) > 0) && errors.Is(err, io.EOF) {
			return "", fmt.Errorf("incomplete line at end of input: %w", io.EOF)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && s.ctx.Err() == nil {
			return "", fmt.Errorf("session idle for %s: %w", timeout, err)
		}
		return "", err
	}
	if len(s.carry) > 0 {
		if len(s.carry)+len(b) > MaxLineLength+1 {
			return "", ErrLineTooLong
		}
		b = append(s.carry, b...)
	}
	b = b[:len(b)-1]
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	return string(b), nil
}

// readDeadliner is a connection whose reads can time out.
type readDeadliner interface{ SetReadDeadline(time.Time) error }

// armRead makes sure the connection's read deadline is no later than
// now+timeout (none at all for timeout 0) and returns that wanted
// deadline (zero: none). A deadline armed for an earlier line is left in
// place when it is earlier than wanted: it is moved on only when it fires
// (rearm), so a busy session touches its timer about once per timeout
// instead of twice per line.
func (s *Session) armRead(timeout time.Duration) time.Time {
	dl, ok := s.conn.(readDeadliner)
	if !ok {
		return time.Time{}
	}
	if timeout <= 0 {
		if !s.armed.IsZero() {
			s.setRead(dl, time.Time{})
		}
		return time.Time{}
	}
	want := time.Now().Add(timeout)
	if s.armed.IsZero() || s.armed.After(want) {
		s.setRead(dl, want)
	}
	return want
}

// setRead sets the read deadline; after a cancellation of the session's
// context (whose AfterFunc set a past deadline) it keeps the deadline in
// the past so that the read still fails at once.
func (s *Session) setRead(dl readDeadliner, t time.Time) {
	dl.SetReadDeadline(t)
	s.armed = t
	if s.ctx.Err() != nil {
		dl.SetReadDeadline(time.Unix(1, 0))
	}
}

// rearm reports whether err is a deadline armed for an earlier line that
// fired before want; it then moves the deadline to want and the read may
// go on.
func (s *Session) rearm(err error, want time.Time) bool {
	var ne net.Error
	if want.IsZero() || !errors.As(err, &ne) || !ne.Timeout() || s.ctx.Err() != nil || !time.Now().Before(want) {
		return false
	}
	dl, ok := s.conn.(readDeadliner)
	if !ok {
		return false
	}
	s.setRead(dl, want)
	return s.ctx.Err() == nil
}
