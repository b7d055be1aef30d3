package fetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// maxFTPControl bounds what the server may send on the control
// connection (greeting, replies) during one download.
const maxFTPControl = 64 << 10

// GetFTP downloads an ftp:// URL (anonymous unless the URL has a user) in
// passive mode, with the same time and size bounds as Get. fetch-crl
// supports ftp distribution points; dirmngr does not use them.
func (f *Fetcher) GetFTP(ctx context.Context, u string) ([]byte, error) {
	var buf bytes.Buffer
	if err := f.GetFTPTo(ctx, u, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// GetFTPTo is GetFTP writing the file to w as it arrives (what was written
// is incomplete when it fails).
func (f *Fetcher) GetFTPTo(ctx context.Context, u string, w io.Writer) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "ftp" || pu.Host == "" {
		return fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	host := pu.Host
	if pu.Port() == "" {
		host = net.JoinHostPort(pu.Hostname(), "21")
	}
	d := net.Dialer{Timeout: f.cfg.ConnectTimeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("fetch: error accessing '%s': %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := &ftpConn{
		r: textproto.NewReader(bufio.NewReader(io.LimitReader(conn, maxFTPControl))),
		w: textproto.NewWriter(bufio.NewWriter(conn)),
	}
	if err := c.retrieve(ctx, &d, pu, f.cfg.MaxBody, w); err != nil {
		return fmt.Errorf("fetch: ftp %s: %w", u, err)
	}
	return nil
}

type ftpConn struct {
	r *textproto.Reader
	w *textproto.Writer
}

// cmd sends a command (none if line is empty) and reads the (possibly
// multi-line) reply, which must have code want (0: any code; 1 or 2: any
// code of that class).
func (c *ftpConn) cmd(want int, line string) (int, string, error) {
	if strings.ContainsAny(line, "\r\n") {
		return 0, "", fmt.Errorf("line break in FTP command: %w", gpgerr.ErrInvURI)
	}
	if line != "" {
		if err := c.w.PrintfLine("%s", line); err != nil {
			return 0, "", gpgerr.Wrap(gpgerr.ErrNoData, err)
		}
	}
	code, msg, err := c.r.ReadResponse(want)
	var te *textproto.Error
	if errors.As(err, &te) {
		return code, msg, fmt.Errorf("%w: %w", &StatusError{te.Code, fmt.Sprintf("%d %s", te.Code, te.Msg)}, gpgerr.ErrNoData)
	}
	if err != nil {
		return 0, "", gpgerr.Wrap(gpgerr.ErrNoData, err)
	}
	return code, msg, nil
}

// login reads the greeting, logs in (a 230 reply to USER needs no
// password) and selects binary mode.
func (c *ftpConn) login(pu *url.URL) error {
	user, pass := "anonymous", "fetch-crl@"
	if pu.User != nil {
		user = pu.User.Username()
		if p, ok := pu.User.Password(); ok {
			pass = p
		}
	}
	if _, _, err := c.cmd(220, ""); err != nil {
		return err
	}
	code, msg, err := c.cmd(0, "USER "+user)
	if err != nil {
		return err
	}
	switch code {
	case 230:
	case 331:
		if _, _, err := c.cmd(230, "PASS "+pass); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: %w", &StatusError{code, fmt.Sprintf("%d %s", code, msg)}, gpgerr.ErrNoData)
	}
	_, _, err = c.cmd(200, "TYPE I")
	return err
}

// retrieve logs in, opens an extended passive data connection and copies
// the file (at most maxBody bytes) to w.
func (c *ftpConn) retrieve(ctx context.Context, d *net.Dialer, pu *url.URL, maxBody int64, w io.Writer) error {
	if err := c.login(pu); err != nil {
		return err
	}
	_, msg, err := c.cmd(229, "EPSV")
	if err != nil {
		return fmt.Errorf("passive mode refused: %w", err)
	}
	// "Entering Extended Passive Mode (|||port|)"
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j <= i+4 {
		return fmt.Errorf("bad EPSV reply %q: %w", msg, gpgerr.ErrNoData)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil || port <= 0 || port > 65535 {
		return fmt.Errorf("bad EPSV reply %q: %w", msg, gpgerr.ErrNoData)
	}
	dataConn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(pu.Hostname(), strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("data connection: %w", gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	defer dataConn.Close()
	if dl, ok := ctx.Deadline(); ok {
		dataConn.SetDeadline(dl)
	}
	if _, _, err := c.cmd(1, "RETR "+pu.Path); err != nil { // 125 or 150
		return err
	}
	if _, err := io.Copy(w, &capped{r: dataConn, c: dataConn, left: maxBody}); err != nil {
		return err
	}
	if _, _, err := c.cmd(2, ""); err != nil { // 226 or 250
		return fmt.Errorf("transfer not completed: %w", err)
	}
	c.cmd(221, "QUIT") // the file is complete whatever the goodbye says
	return nil
}
