package logging

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// GnuPG's log-file forms for streaming to a log server such as watchgnupg.
const (
	socketScheme = "socket://"
	tcpScheme    = "tcp://"
)

// dialTimeout bounds one connection attempt to the log server.
const dialTimeout = time.Second

// retryAfter (a variable for tests) is how long a failed log server is left alone before the next
// connection attempt; in between lines go to the fallback.
var retryAfter = 2 * time.Second

// streamWriter streams log lines to a Unix socket or TCP log server, as
// GnuPG does for "log-file socket://PATH" and "tcp://HOST:PORT": it
// connects on the first line, reconnects after a lost connection, and while
// the server is unreachable writes to the fallback (stderr) instead of
// failing, so that the daemon starts and logs whether or not the log
// server runs.
type streamWriter struct {
	network, addr string
	fallback      io.Writer

	mu        sync.Mutex
	conn      net.Conn
	lastFail  time.Time
	warnShown bool
}

// parseStream recognises the log server forms of a log-file name; ok is
// false for an ordinary file name. defaultSocket is used for a bare
// "socket://" (GnuPG: the S.log socket in the socket directory).
func parseStream(name, defaultSocket string) (network, addr string, ok bool, err error) {
	switch {
	case strings.HasPrefix(name, socketScheme):
		addr = strings.TrimPrefix(name, socketScheme)
		if addr == "" {
			addr = defaultSocket
		}
		if addr == "" {
			return "", "", true, fmt.Errorf("log-file %q names no socket", name)
		}
		return "unix", addr, true, nil
	case strings.HasPrefix(name, tcpScheme):
		addr = strings.TrimSuffix(strings.TrimPrefix(name, tcpScheme), "/")
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", true, fmt.Errorf("log-file %q: expected tcp://HOST:PORT: %w", name, err)
		}
		return "tcp", addr, true, nil
	}
	return "", "", false, nil
}

// Write sends p to the log server, or to the fallback while it is away.
func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil && time.Since(s.lastFail) >= retryAfter {
		c, err := net.DialTimeout(s.network, s.addr, dialTimeout)
		if err != nil {
			s.lastFail = time.Now()
			if !s.warnShown && s.fallback != nil {
				fmt.Fprintf(s.fallback, "can't connect to the log server '%s': %v - logging to stderr\n", s.addr, plainCause(err))
				s.warnShown = true
			}
		} else {
			s.conn, s.warnShown = c, false
		}
	}
	if s.conn != nil {
		s.conn.SetWriteDeadline(time.Now().Add(dialTimeout))
		if _, err := s.conn.Write(p); err == nil {
			return len(p), nil
		}
		s.conn.Close()
		s.conn, s.lastFail = nil, time.Now()
	}
	if s.fallback == nil {
		return len(p), nil
	}
	return s.fallback.Write(p)
}

// Close ends the connection to the log server.
func (s *streamWriter) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// plainCause strips Go's "dial unix PATH: connect: " chain down to the
// system's words ("no such file or directory", "connection refused").
func plainCause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}
