package assuan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// MaxLineLength is the longest line accepted, excluding the LF
// (libassuan's ASSUAN_LINELENGTH of 1002 including the LF).
const MaxLineLength = 1001

// maxOutLine is the longest line written, excluding the LF.
const maxOutLine = 1000

// HandlerFunc runs one command; args is the rest of the line after the
// command word, without leading blanks. A nil error is answered with OK, an
// error with ERR (its gpg-error code, source and detail).
type HandlerFunc func(s *Session, args string) error

// Command is an application command.
type Command struct {
	Name string
	// Help is the full help text; its first line is the synopsis HELP lists.
	Help    string
	Handler HandlerFunc
	// NoLogArgs keeps the arguments out of the debug log (secrets).
	NoLogArgs bool
}

// Server describes an Assuan service; one Server serves many sessions.
type Server struct {
	// Hello lines: all but the last are sent as "# line", the last as "OK line".
	Hello []string
	// Commands in registration (and HELP) order.
	Commands []Command
	// ErrorSource is used for errors that carry no source of their own.
	ErrorSource gpgerr.Source
	// Option is called for OPTION after libassuan's pre-parsing; nil accepts all.
	Option func(s *Session, name, value string) error
	// Reset is called for RESET.
	Reset func(s *Session) error
	// IdleTimeout ends a session that sends nothing for that long (0 = never),
	// when the connection supports deadlines.
	IdleTimeout time.Duration
	// InquireTimeout bounds the wait for the answer to one INQUIRE
	// (0 = DefaultInquireTimeout; negative = IdleTimeout). A client that
	// does not answer is a stalled client: its command fails with Timeout
	// and its session ends, so it cannot hold others (e.g. followers of a
	// shared download) for the whole idle timeout.
	InquireTimeout time.Duration
	// Logger receives one debug line per request; nil = no logging.
	Logger *slog.Logger
}

// DefaultInquireTimeout is the default InquireTimeout: GnuPG's clients
// answer inquiries at once from their own stores.
const DefaultInquireTimeout = 30 * time.Second

func (srv *Server) inquireTimeout() time.Duration {
	switch {
	case srv.InquireTimeout == 0:
		return DefaultInquireTimeout
	case srv.InquireTimeout < 0:
		return srv.IdleTimeout
	}
	return srv.InquireTimeout
}

var builtinNames = []string{"NOP", "CANCEL", "OPTION", "BYE", "AUTH", "RESET", "END", "HELP"}

// PeerCred holds the credentials of the process at the other end of a Unix
// socket.
type PeerCred struct {
	Known         bool
	PID, UID, GID int
}

// Session is the state of one connection.
type Session struct {
	ID    uint64
	Peer  PeerCred
	Value any // free for the application

	srv        *Server
	ctx        context.Context
	conn       io.ReadWriter
	r          *bufio.Reader
	w          *bufio.Writer
	line       []byte // pending D line, starts with "D "
	okText     string
	closeAfter bool
	inInquire  bool
	endAfter   bool      // end the session after the current reply (unanswered INQUIRE)
	err        error     // fatal I/O error
	armed      time.Time // read deadline set on conn (zero: none); see armRead
	carry      []byte    // see readLine
	num        [10]byte  // writeErr's digits (a local array would escape)
}

// NewSession prepares a session with the given id and peer credentials.
func NewSession(id uint64, peer PeerCred) *Session { return &Session{ID: id, Peer: peer} }

// Context returns the session's context (cancelled when it ends).
func (s *Session) Context() context.Context {
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

// errSessionEnd ends ServeConn without an error.
var errSessionEnd = errors.New("session ended")

// ErrLineTooLong is returned by ServeConn when the peer sent an over-long line.
var ErrLineTooLong = errors.New("assuan: line too long")

// ServeConn runs one session on conn until BYE, EOF, an over-long line,
// cancellation of ctx, or a handler asking to close.
func (srv *Server) ServeConn(ctx context.Context, conn io.ReadWriter, s *Session) (err error) {
	if s == nil {
		s = NewSession(0, PeerCred{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.srv, s.ctx, s.conn = srv, ctx, conn
	s.r = bufio.NewReaderSize(conn, MaxLineLength+1)
	s.w = bufio.NewWriterSize(conn, 4096)
	if dl, ok := conn.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { dl.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	for i, h := range srv.Hello {
		if i == len(srv.Hello)-1 {
			s.writeLine("OK " + h)
		} else {
			s.writeLine("# " + h)
		}
	}
	if len(srv.Hello) == 0 {
		s.writeLine("OK")
	}
	if err := s.flush(); err != nil {
		return err
	}
	for {
		line, err := s.readLine(srv.IdleTimeout)
		if err != nil {
			if errors.Is(err, ErrLineTooLong) {
				srv.log().Info("Assuan processing failed: Line passed to IPC too long", "session", s.ID)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := s.dispatch(line); err != nil {
			if errors.Is(err, errSessionEnd) {
				return nil
			}
			return err
		}
	}
}

func (srv *Server) log() *slog.Logger {
	if srv.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return srv.Logger
}

func (s *Session) dispatch(line string) (err error) {
	if line == "" || line[0] == '#' {
		return nil
	}
	srv := s.srv
	s.okText, s.closeAfter = "", false
	if line[0] == ' ' || line[0] == '\t' {
		return s.reply(gpgerr.NewError(gpgerr.ErrAssSyntax, "leading white-space"))
	}
	name, args := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		name, args = line[:i], strings.TrimLeft(line[i+1:], " \t")
	}
	cmd := srv.lookup(name)
	// Checked first: building the record's message and attributes costs
	// allocations on every command even when debug logging is off.
	if log := srv.log(); log.Enabled(context.Background(), slog.LevelDebug) {
		switch {
		case cmd == nil:
			log.Debug("<- "+name, "session", s.ID)
		case cmd.NoLogArgs:
			log.Debug("<- "+cmd.Name, "session", s.ID)
		default:
			log.Debug("<- "+cmd.Name, "session", s.ID, "args", args)
		}
	}
	var herr error
	switch {
	case cmd != nil:
		var panicked bool
		herr, panicked = s.runCmd(cmd.Handler, args)
		if panicked {
			s.reply(herr)
			return errSessionEnd
		}
		if herr != nil {
			s.logFailure(cmd.Name, herr)
		}
	default:
		switch strings.ToUpper(name) {
		case "NOP":
		case "CANCEL", "AUTH", "END", "D":
			herr = gpgerr.ErrNotImplemented
		case "BYE":
			s.closeAfter = true
		case "RESET":
			if srv.Reset != nil {
				herr = s.run(func(s *Session, _ string) error { return srv.Reset(s) }, "")
			}
		case "OPTION":
			herr = s.run(s.option, args)
		case "HELP":
			herr = s.help(args)
		default:
			herr = gpgerr.ErrAssUnknownCmd
		}
	}
	if err := s.reply(herr); err != nil {
		return err
	}
	if s.closeAfter || s.endAfter {
		return errSessionEnd
	}
	return nil
}

// runCmd calls a handler, turning a panic into a General error.
func (s *Session) runCmd(h HandlerFunc, args string) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.srv.log().Error("command handler panicked - ending the session", "session", s.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err, panicked = gpgerr.ErrGeneral, true
		}
	}()
	return h(s, args), false
}

// run calls a built-in hook; a panic becomes a General error.
func (s *Session) run(h HandlerFunc, args string) error {
	err, _ := s.runCmd(h, args)
	return err
}

func (srv *Server) lookup(name string) *Command {
	for i := range srv.Commands {
		if srv.Commands[i].Name == name {
			return &srv.Commands[i]
		}
	}
	for i := range srv.Commands {
		if strings.EqualFold(srv.Commands[i].Name, name) {
			return &srv.Commands[i]
		}
	}
	return nil
}

// option implements libassuan's OPTION pre-parsing.
func (s *Session) option(_ *Session, args string) error {
	line := strings.TrimLeft(args, " \t")
	if line == "" {
		return gpgerr.NewError(gpgerr.ErrAssSyntax, "argument required")
	}
	if line[0] == '=' {
		return gpgerr.NewError(gpgerr.ErrAssSyntax, "no option name given")
	}
	if line[0] == '-' && (len(line) < 2 || line[1] != '-') {
		return gpgerr.NewError(gpgerr.ErrAssSyntax, "option should not begin with one dash")
	}
	line = strings.TrimPrefix(line, "--")
	end := strings.IndexAny(line, " \t=")
	name, rest := line, ""
	if end >= 0 {
		name, rest = line[:end], line[end:]
	}
	if name == "" {
		return gpgerr.NewError(gpgerr.ErrAssSyntax, "no option name given")
	}
	rest = strings.TrimLeft(rest, " \t")
	if strings.HasPrefix(rest, "=") {
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" {
			return gpgerr.NewError(gpgerr.ErrAssSyntax, "option argument expected")
		}
	}
	value := strings.TrimRight(rest, " \t")
	if s.srv.Option == nil {
		return nil
	}
	return s.srv.Option(s, name, value)
}

// help implements HELP [command].
func (s *Session) help(args string) error {
	name := strings.TrimSpace(args)
	if name == "" {
		for _, b := range builtinNames {
			s.writeLine("# " + b)
		}
		for _, c := range s.srv.Commands {
			first, _, _ := strings.Cut(c.Help, "\n")
			if first == "" {
				first = c.Name
			}
			s.writeLine("# " + first)
		}
		return nil
	}
	if i := strings.IndexAny(name, " \t"); i >= 0 {
		name = name[:i]
	}
	if c := s.srv.lookup(name); c != nil {
		if c.Help == "" {
			s.writeLine("# " + c.Name)
			return nil
		}
		for _, l := range strings.Split(c.Help, "\n") {
			s.writeLine("# " + EscapeStatus(l))
		}
		return nil
	}
	for _, b := range builtinNames {
		if strings.EqualFold(b, name) {
			s.writeLine("# " + b)
			return nil
		}
	}
	return gpgerr.ErrUnknownCommand
}

// reply writes OK or ERR for the finished command and flushes.
func (s *Session) reply(herr error) error {
	if s.err != nil {
		return s.err
	}
	s.FlushData()
	if herr == nil {
		switch {
		case s.closeAfter:
			s.writeLine("OK closing connection")
		case s.okText != "":
			s.writeLine("OK " + EscapeStatus(s.okText))
		default:
			s.writeLine("OK")
		}
		return s.flush()
	}
	code := gpgerr.CodeOf(herr)
	src := gpgerr.SourceOf(herr)
	if src == gpgerr.SourceUnknown {
		src = s.srv.ErrorSource
	}
	s.closeAfter = false
	s.writeErr(gpgerr.WireValue(src, code), trunc(code.Error(), 50), trunc(src.String(), 30), gpgerr.DetailOf(herr))
	return s.flush()
}

// writeErr buffers "ERR <value> <text> <<source>>[ - <detail>]" without
// formatting through fmt (a revoked certificate is an ERR, and half of a
// busy daemon's answers can be ERR lines). The line stays far below
// maxOutLine: 10 digits, 50 + 30 characters, a detail cut to 100.
func (s *Session) writeErr(value uint32, text, source, detail string) {
	if s.err != nil {
		return
	}
	w := s.w
	w.WriteString("ERR ")
	w.Write(strconv.AppendUint(s.num[:0], uint64(value), 10))
	w.WriteByte(' ')
	w.WriteString(text)
	w.WriteString(" <")
	w.WriteString(source)
	w.WriteByte('>')
	if detail != "" {
		w.WriteString(" - ")
		w.WriteString(trunc(EscapeStatus(detail), 100))
	}
	if err := w.WriteByte('\n'); err != nil {
		s.err = err
	}
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// writeLine buffers one output line, cut to the protocol limit.
func (s *Session) writeLine(line string) {
	if s.err != nil {
		return
	}
	if len(line) > maxOutLine {
		line = line[:maxOutLine]
	}
	if _, err := s.w.WriteString(line); err != nil {
		s.err = err
		return
	}
	if err := s.w.WriteByte('\n'); err != nil {
		s.err = err
	}
}

func (s *Session) flush() error {
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		s.err = err
	}
	return s.err
}

// Data sends p (escaped) as part of the current D line(s).
func (s *Session) Data(p []byte) error {
	if s.err != nil {
		return s.err
	}
	if s.line == nil {
		s.line = make([]byte, 0, maxOutLine+1)
	}
	for _, c := range p {
		n := 1
		if c == '%' || c == '\r' || c == '\n' {
			n = 3
		}
		if len(s.line) == 0 {
			s.line = append(s.line, 'D', ' ')
		}
		if len(s.line)+n > maxOutLine {
			s.FlushData()
			s.line = append(s.line, 'D', ' ')
		}
		if n == 3 {
			s.line = append(s.line, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			s.line = append(s.line, c)
		}
	}
	return s.err
}

// FlushData ends the current D line.
func (s *Session) FlushData() error {
	if len(s.line) > 0 {
		s.writeLine(string(s.line))
		s.line = s.line[:0]
	}
	return s.err
}

// End flushes pending data and writes END (an item separator in a
// response, e.g. after each certificate of a LOOKUP).
func (s *Session) End() error {
	s.FlushData()
	s.writeLine("END")
	return s.err
}

// Status sends "S KEYWORD text" and flushes it to the client at once.
func (s *Session) Status(keyword, text string) error {
	if keyword == "" || strings.ContainsAny(keyword, " \t\r\n") {
		return fmt.Errorf("assuan: invalid status keyword %q", keyword)
	}
	s.FlushData()
	line := "S " + keyword
	if text != "" {
		line += " " + EscapeStatus(text)
	}
	s.writeLine(line)
	return s.flush()
}

// Comment sends "# text".
func (s *Session) Comment(text string) error {
	s.FlushData()
	s.writeLine("# " + EscapeStatus(text))
	return s.err
}

// SetOKText sets the text of the OK line ending the current command.
func (s *Session) SetOKText(text string) { s.okText = text }

// CloseAfterReply ends the session after the current command, whose OK
// line becomes "OK closing connection".
func (s *Session) CloseAfterReply() { s.closeAfter = true }

// Inquire asks the client for data: "INQUIRE KEYWORD args", then D lines up
// to END. CAN (any line starting with CAN, any case) yields ErrAssCanceled,
// any other line ErrAssUnexpectedCmd. If more than maxLen bytes arrive
// (maxLen 0 = unlimited) the rest is read up to END and ErrAssTooMuchData
// is returned.
func (s *Session) Inquire(keyword, args string, maxLen int) ([]byte, error) {
	if s.inInquire {
		return nil, gpgerr.ErrAssNestedCommands
	}
	s.inInquire = true
	defer func() { s.inInquire = false }()
	s.FlushData()
	line := "INQUIRE " + keyword
	if args != "" {
		line += " " + args
	}
	s.writeLine(line)
	if err := s.flush(); err != nil {
		return nil, err
	}
	var buf []byte
	tooMuch := false
	for {
		l, err := s.readLine(s.srv.inquireTimeout())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && s.ctx.Err() == nil {
				// The command fails with Timeout and the session ends
				// after that reply: a late answer would be out of step.
				s.endAfter = true
				s.srv.log().Info("no answer to INQUIRE "+keyword+" - ending the session", "session", s.ID, "waited", s.srv.inquireTimeout().String())
				return nil, gpgerr.Wrap(gpgerr.ErrTimeout, fmt.Errorf("no answer to INQUIRE %s within %s: %w", keyword, s.srv.inquireTimeout(), err))
			}
			s.err = err
			return nil, fmt.Errorf("reading inquiry answer: %w", err)
		}
		switch {
		case l == "D" || strings.HasPrefix(l, "D "):
			if tooMuch {
				continue
			}
			if len(l) > 2 {
				buf = append(buf, UnescapeData([]byte(l[2:]))...)
			}
			if maxLen > 0 && len(buf) > maxLen {
				tooMuch, buf = true, nil
			}
		case isWord(l, "END"):
			if tooMuch {
				return nil, gpgerr.ErrAssTooMuchData
			}
			if buf == nil {
				buf = []byte{}
			}
			return buf, nil
		case len(l) >= 3 && strings.EqualFold(l[:3], "CAN"):
			return nil, gpgerr.ErrAssCanceled
		case l == "" || l[0] == '#':
		default:
			return nil, gpgerr.ErrAssUnexpectedCmd
		}
	}
}

// isWord reports whether line is word (any case), possibly followed by a
// blank and more text.
func isWord(line, word string) bool {
	return len(line) >= len(word) && strings.EqualFold(line[:len(word)], word) &&
		(len(line) == len(word) || line[len(word)] == ' ' || line[len(word)] == '\t')
}
