package assuan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// Client is the client side of an Assuan connection.
type Client struct {
	// Hello holds the greeting lines (comments and the final OK line).
	Hello  []string
	conn   io.ReadWriteCloser
	r      *bufio.Reader
	w      *bufio.Writer
	okText string
}

// Handlers receive what a server sends while a command runs.
type Handlers struct {
	Data    func(p []byte) error
	Status  func(keyword, args string) error
	Inquire func(keyword, args string) ([]byte, error)
	End     func() error
	Comment func(text string)
}

// Dial connects to the Assuan server listening on a Unix socket.
func Dial(socketPath string) (*Client, error) {
	c, err := net.DialTimeout("unix", socketPath, 10*time.Second)
	if err != nil {
		return nil, &gpgerr.Error{Code: gpgerr.ErrAssConnectFailed, Err: fmt.Errorf("connecting to %s: %w", socketPath, err)}
	}
	return NewClient(c)
}

// NewClient reads the greeting from conn and returns a client.
func NewClient(conn io.ReadWriteCloser) (*Client, error) {
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 2048), w: bufio.NewWriter(conn)}
	for {
		line, err := c.ReadLine()
		if err != nil {
			conn.Close()
			return nil, &gpgerr.Error{Code: gpgerr.ErrAssConnectFailed, Err: fmt.Errorf("reading greeting: %w", err)}
		}
		c.Hello = append(c.Hello, line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if isWord(line, "OK") {
			return c, nil
		}
		conn.Close()
		if e := parseErrLine(line); e != nil {
			return nil, e
		}
		return nil, &gpgerr.Error{Code: gpgerr.ErrAssConnectFailed, Err: fmt.Errorf("unexpected greeting %q", line)}
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// OKText returns the text after "OK " of the last successful command.
func (c *Client) OKText() string { return c.okText }

// WriteLine sends one raw line (LF appended).
func (c *Client) WriteLine(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("assuan: line contains CR or LF")
	}
	if len(line) > MaxLineLength {
		return gpgerr.ErrAssLineTooLong
	}
	if _, err := c.w.WriteString(line + "\n"); err != nil {
		return err
	}
	return c.w.Flush()
}

// ReadLine reads one raw line without its line end.
func (c *Client) ReadLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		if line != "" && errors.Is(err, io.EOF) {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// sendData writes p as escaped D lines.
func (c *Client) sendData(p []byte) error {
	esc := EscapeData(p)
	for len(esc) > 0 {
		n := len(esc)
		if n > maxOutLine-2 {
			n = maxOutLine - 2
			// Never split an escape sequence.
			if esc[n-1] == '%' {
				n--
			} else if esc[n-2] == '%' {
				n -= 2
			}
		}
		if _, err := c.w.WriteString("D " + string(esc[:n]) + "\n"); err != nil {
			return err
		}
		esc = esc[n:]
	}
	return nil
}

// Transact sends a command and processes the response until OK or ERR.
// An ERR reply is returned as *Error with the source, code and detail.
func (c *Client) Transact(ctx context.Context, line string, h *Handlers) error {
	if h == nil {
		h = &Handlers{}
	}
	if dl, ok := c.conn.(interface{ SetDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { dl.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	if err := c.WriteLine(line); err != nil {
		return fmt.Errorf("sending command: %w", err)
	}
	var cbErr error
	for {
		l, err := c.ReadLine()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("reading response: %w", err)
		}
		switch {
		case isWord(l, "OK"):
			c.okText = strings.TrimPrefix(strings.TrimPrefix(l, "OK"), " ")
			return cbErr
		case isWord(l, "ERR"):
			if e := parseErrLine(l); e != nil {
				return e
			}
			return &gpgerr.Error{Code: gpgerr.ErrAssInvResponse, Err: fmt.Errorf("bad ERR line %q", l)}
		case l == "D" || strings.HasPrefix(l, "D "):
			if h.Data != nil && cbErr == nil && len(l) > 2 {
				cbErr = h.Data(UnescapeData([]byte(l[2:])))
			}
		case isWord(l, "S"):
			kw, args, _ := strings.Cut(strings.TrimPrefix(l[1:], " "), " ")
			if h.Status != nil && cbErr == nil {
				cbErr = h.Status(kw, args)
			}
		case isWord(l, "END"):
			if h.End != nil && cbErr == nil {
				cbErr = h.End()
			}
		case strings.HasPrefix(l, "#"):
			if h.Comment != nil {
				h.Comment(strings.TrimPrefix(strings.TrimPrefix(l, "#"), " "))
			}
		case isWord(l, "INQUIRE"):
			kw, args, _ := strings.Cut(strings.TrimPrefix(l[len("INQUIRE"):], " "), " ")
			var data []byte
			ierr := error(gpgerr.ErrAssNoInquireCb)
			if h.Inquire != nil {
				data, ierr = h.Inquire(kw, args)
			}
			if ierr != nil {
				if err := c.WriteLine("CAN"); err != nil {
					return err
				}
				continue
			}
			if err := c.sendData(data); err != nil {
				return err
			}
			if err := c.WriteLine("END"); err != nil {
				return err
			}
		default:
			return &gpgerr.Error{Code: gpgerr.ErrAssInvResponse, Err: fmt.Errorf("unexpected line %q", l)}
		}
	}
}

// parseErrLine parses "ERR <n> <text> <source> - <detail>"; nil if malformed.
func parseErrLine(l string) *gpgerr.Error {
	rest := strings.TrimPrefix(l, "ERR ")
	numStr, text, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseUint(numStr, 10, 32)
	if err != nil {
		return nil
	}
	src, code := gpgerr.ParseWireValue(uint32(n))
	e := &gpgerr.Error{Code: code, Source: src}
	if _, detail, ok := strings.Cut(text, " - "); ok {
		e.Detail = detail
	}
	return e
}
