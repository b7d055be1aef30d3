package fetchcrl

import (
	"fmt"
	"io"
	"log/syslog"
	"strings"
	"sync"
)

// Log is fetch-crl's logger: "VERBOSE(n) ", "WARN ", "ERROR " prefixed
// lines on standard output (logmode qualified), unprefixed (direct), held
// until the end (cache) or sent to syslog. It counts errors in two
// classes, which decide the exit status with rcmode.
type Log struct {
	mu        sync.Mutex
	out       io.Writer
	verbosity int
	qualified bool
	direct    bool
	cache     bool
	sys       *syslog.Writer
	held      []string
	errs      int // configuration and local errors
	retrErrs  int // retrieval and verification errors
	warns     int
}

// NewLog creates a logger for logmode (comma-separated).
func NewLog(out io.Writer, verbosity int, logmode, facility string) (*Log, error) {
	l := &Log{out: out, verbosity: verbosity}
	for _, m := range strings.FieldsFunc(logmode, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch m {
		case "qualified":
			l.qualified = true
		case "direct":
			l.direct = true
		case "cache":
			l.cache = true
		case "syslog":
			prio, ok := facilities[facility]
			if !ok {
				prio = syslog.LOG_DAEMON
			}
			w, err := syslog.New(prio|syslog.LOG_NOTICE, "fetch-crl")
			if err != nil {
				return nil, fmt.Errorf("cannot open syslog: %w", err)
			}
			l.sys = w
		default:
			return nil, fmt.Errorf("Invalid log destination %s, exiting.", m)
		}
	}
	if !l.qualified && !l.direct && !l.cache && l.sys == nil {
		l.qualified = true
	}
	return l, nil
}

var facilities = map[string]syslog.Priority{
	"daemon": syslog.LOG_DAEMON, "user": syslog.LOG_USER, "cron": syslog.LOG_CRON, "local0": syslog.LOG_LOCAL0,
	"local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3, "local4": syslog.LOG_LOCAL4,
	"local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7, "auth": syslog.LOG_AUTH,
}

// Sink receives the lines of one trust anchor; it applies that anchor's
// nowarnings/noerrors without touching the global logger (fetch-crl 3
// leaks them to later anchors when one aborts).
type Sink struct {
	l          *Log
	noWarnings bool
	noErrors   bool
	buf        []string // per-anchor buffer (parallel runs)
	buffered   bool
	errs       int
	retrErrs   int
}

// Anchor returns a sink for one trust anchor. buffered sinks hold their
// lines until Flush (parallel processing prints anchors in order).
func (l *Log) Anchor(noWarnings, noErrors, buffered bool) *Sink {
	return &Sink{l: l, noWarnings: noWarnings, noErrors: noErrors, buffered: buffered}
}

// Global is the sink for messages outside trust-anchor processing.
func (l *Log) Global() *Sink { return &Sink{l: l} }

func (s *Sink) emit(prefix, msg string) {
	line := msg
	if s.l.qualified || !s.l.direct {
		line = prefix + msg // cache and syslog lines keep the prefixes
	}
	if s.buffered {
		s.buf = append(s.buf, line)
		return
	}
	s.l.write(prefix, line)
}

func (l *Log) write(prefix, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sys != nil {
		switch {
		case strings.HasPrefix(prefix, "ERROR"):
			l.sys.Err(line)
		case strings.HasPrefix(prefix, "WARN"):
			l.sys.Notice(line)
		default:
			l.sys.Debug(line)
		}
	}
	if l.cache {
		l.held = append(l.held, line)
		return
	}
	if l.qualified || l.direct {
		fmt.Fprintln(l.out, line)
	}
}

// Verbose logs at verbosity level n.
func (s *Sink) Verbose(n int, format string, args ...any) {
	if s.l.verbosity < n || s.l.verbosity < 0 {
		return
	}
	s.emit(fmt.Sprintf("VERBOSE(%d) ", n), fmt.Sprintf(format, args...))
}

// Warn logs a warning unless suppressed.
func (s *Sink) Warn(format string, args ...any) {
	if s.noWarnings {
		return
	}
	s.l.mu.Lock()
	s.l.warns++
	s.l.mu.Unlock()
	s.emit("WARN ", fmt.Sprintf(format, args...))
}

// Err logs a configuration or local error.
func (s *Sink) Err(format string, args ...any) {
	if s.noErrors {
		return
	}
	s.count(&s.errs, &s.l.errs)
	s.emit("ERROR ", fmt.Sprintf(format, args...))
}

// count adds one error to the sink, or straight to the log when the sink
// is not buffered.
func (s *Sink) count(local, global *int) {
	if s.buffered {
		*local++
		return
	}
	s.l.mu.Lock()
	*global++
	s.l.mu.Unlock()
}

// RetrErr logs a retrieval or verification error.
func (s *Sink) RetrErr(format string, args ...any) {
	if s.noErrors {
		return
	}
	s.count(&s.retrErrs, &s.l.retrErrs)
	s.emit("ERROR ", fmt.Sprintf(format, args...))
}

// Flush prints buffered lines and adds the sink's error counts to the log.
func (s *Sink) Flush() {
	for _, line := range s.buf {
		prefix := ""
		switch {
		case strings.HasPrefix(line, "ERROR"):
			prefix = "ERROR "
		case strings.HasPrefix(line, "WARN"):
			prefix = "WARN "
		}
		s.l.write(prefix, line)
	}
	s.buf = nil
	s.l.mu.Lock()
	s.l.errs += s.errs
	s.l.retrErrs += s.retrErrs
	s.l.mu.Unlock()
	s.errs, s.retrErrs = 0, 0
}

// Close prints held lines (logmode cache) and closes syslog.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.held {
		fmt.Fprintln(l.out, line)
	}
	l.held = nil
	if l.sys != nil {
		l.sys.Close()
	}
}

// ExitStatus maps the error counts to fetch-crl's exit codes for rcmode.
func (l *Log) ExitStatus(rcmode string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.errs > 0:
		return 1
	case l.retrErrs > 0:
		switch rcmode {
		case "differentiated":
			return 2
		case "noretrievalerrors":
			return 0
		}
		return 1
	}
	return 0
}

// Counts returns the warning and error counts.
func (l *Log) Counts() (warns, errs, retrErrs int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.warns, l.errs, l.retrErrs
}
