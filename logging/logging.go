// Package logging provides the slog handler used by dirmngr and its tools:
// GnuPG-style lines ("dirmngr[pid]: message key=value"), optional
// timestamps (log files), a level adjustable at run time (SIGHUP re-reads
// --verbose/--quiet/--debug-level) and a destination that can be switched
// (a changed --log-file).
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Output is an io.Writer whose destination can be replaced at run time.
type Output struct {
	mu      sync.Mutex
	w       io.Writer
	closer  io.Closer
	name    string
	discard atomic.Bool // w is /dev/null: handlers skip formatting

	// DefaultSocket is the log server socket a bare "socket://" names
	// (GnuPG: S.log in the socket directory); set it before OpenFile.
	DefaultSocket string
}

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output {
	o := &Output{w: w}
	o.discard.Store(isDevNull(w))
	return o
}

// Discards reports whether the destination is /dev/null (a daemon's
// stderr without --log-file): Handler then reports every level disabled,
// so a busy daemon does not format and write lines nobody reads.
func (o *Output) Discards() bool { return o.discard.Load() }

// isDevNull reports whether w is an open /dev/null.
func isDevNull(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// Write writes p to the current destination.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.Write(p)
}

// Name returns the file name set by OpenFile ("" for the initial writer).
func (o *Output) Name() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.name
}

// OpenFile switches the destination to the file name (appending, created
// 0600), or, for GnuPG's "socket://PATH" and "tcp://HOST:PORT" forms, to a
// log server such as watchgnupg (lines go to fallback while it is not
// reachable). The previous file or connection, if Output opened one, is
// closed. An empty name switches back to fallback.
func (o *Output) OpenFile(name string, fallback io.Writer) error {
	var (
		w      io.Writer = fallback
		closer io.Closer
	)
	network, addr, stream, err := parseStream(name, o.DefaultSocket)
	if err != nil {
		return err
	}
	if stream {
		sw := &streamWriter{network: network, addr: addr, fallback: fallback}
		w, closer = sw, sw
	} else if name != "" {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("opening log file: %w", err)
		}
		w, closer = f, f
	}
	o.mu.Lock()
	old := o.closer
	o.w, o.closer, o.name = w, closer, name
	o.discard.Store(isDevNull(w))
	o.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Handler is a slog.Handler writing one GnuPG-style line per record.
type Handler struct {
	out        io.Writer
	mu         *sync.Mutex
	program    string
	timestamps bool
	level      slog.Leveler
	prefix     string // pre-rendered attributes from WithAttrs
	group      string
}

// NewHandler returns a handler writing lines "program[pid]: msg k=v" to
// out; with timestamps each line starts with "YYYY-MM-DD HH:MM:SS ".
func NewHandler(out io.Writer, program string, timestamps bool, level slog.Leveler) *Handler {
	return &Handler{out: out, mu: &sync.Mutex{}, program: program + "[" + strconv.Itoa(os.Getpid()) + "]", timestamps: timestamps, level: level}
}

// Enabled reports whether records at level l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	if o, ok := h.out.(*Output); ok && o.Discards() {
		return false
	}
	return l >= h.level.Level()
}

// Handle writes one record.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	if h.timestamps {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		b.WriteString(t.Format("2006-01-02 15:04:05 "))
	}
	b.WriteString(h.program)
	b.WriteString(": ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("WARNING: ")
	case r.Level < slog.LevelInfo:
		b.WriteString("DBG: ")
	}
	b.WriteString(sanitize(r.Message))
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.out.Write(b.Bytes())
	return err
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b bytes.Buffer
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.prefix = h.prefix + b.String()
	return &h2
}

// WithGroup returns a handler that qualifies attribute keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	if h2.group != "" {
		h2.group += "."
	}
	h2.group += name
	return &h2
}

func appendAttr(b *bytes.Buffer, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := a.Key
		if group != "" {
			g = group + "." + a.Key
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	if group != "" {
		b.WriteString(group)
		b.WriteByte('.')
	}
	b.WriteString(a.Key)
	b.WriteByte('=')
	s := sanitize(a.Value.String())
	if s == "" || bytes.ContainsAny([]byte(s), " \"=") {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}

// sanitize keeps a log line on one line: control characters are escaped.
func sanitize(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			q := strconv.Quote(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// Level maps dirmngr's --quiet, --verbose and --debug-level onto a slog
// level: debug output at any debug level, warnings only with --quiet.
func Level(quiet bool, verbose, debugLevel int) slog.Level {
	switch {
	case debugLevel > 0:
		return slog.LevelDebug
	case quiet:
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}
