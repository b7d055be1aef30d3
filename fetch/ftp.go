package fetch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// GetFTP downloads an ftp:// URL (anonymous unless the URL has a user) in
// passive mode, with the same time and size bounds as Get. fetch-crl
// supports ftp distribution points; dirmngr does not use them.
func (f *Fetcher) GetFTP(ctx context.Context, u string) ([]byte, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "ftp" || pu.Host == "" {
		return nil, fmt.Errorf("fetch: %q: %w", u, gpgerr.ErrInvURI)
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
		return nil, fmt.Errorf("fetch: error accessing '%s': %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c := &ftpConn{r: bufio.NewReader(conn), w: conn}
	user, pass := "anonymous", "fetch-crl@"
	if pu.User != nil {
		user = pu.User.Username()
		if p, ok := pu.User.Password(); ok {
			pass = p
		}
	}
	steps := []struct {
		cmd  string
		want int
	}{{"", 220}, {"USER " + user, 331}, {"PASS " + pass, 230}, {"TYPE I", 200}}
	for _, s := range steps {
		code, msg, err := c.cmd(s.cmd)
		if err != nil {
			return nil, fmt.Errorf("fetch: ftp %s: %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
		}
		if code == 230 && s.want == 331 {
			break // no password needed
		}
		if code != s.want {
			return nil, fmt.Errorf("fetch: ftp %s: %w: %w", u, &StatusError{code, fmt.Sprintf("%d %s", code, msg)}, gpgerr.ErrNoData)
		}
	}
	code, msg, err := c.cmd("EPSV")
	if err != nil {
		return nil, fmt.Errorf("fetch: ftp %s: %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	if code != 229 {
		return nil, fmt.Errorf("fetch: ftp %s: passive mode refused: %d %s: %w", u, code, msg, gpgerr.ErrNoData)
	}
	// "Entering Extended Passive Mode (|||port|)"
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j <= i+4 {
		return nil, fmt.Errorf("fetch: ftp %s: bad EPSV reply %q: %w", u, msg, gpgerr.ErrNoData)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		return nil, fmt.Errorf("fetch: ftp %s: bad EPSV reply %q: %w", u, msg, gpgerr.ErrNoData)
	}
	dataConn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(pu.Hostname(), strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("fetch: ftp %s: data connection: %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	defer dataConn.Close()
	if dl, ok := ctx.Deadline(); ok {
		dataConn.SetDeadline(dl)
	}
	code, msg, err = c.cmd("RETR " + pu.Path)
	if err != nil {
		return nil, fmt.Errorf("fetch: ftp %s: %w", u, gpgerr.Wrap(gpgerr.ErrNoData, err))
	}
	if code != 150 && code != 125 {
		return nil, fmt.Errorf("fetch: ftp %s: %w: %w", u, &StatusError{code, fmt.Sprintf("%d %s", code, msg)}, gpgerr.ErrNoData)
	}
	data, err := io.ReadAll(&capped{r: dataConn, c: dataConn, left: f.cfg.MaxBody})
	if err != nil {
		return nil, fmt.Errorf("fetch: ftp %s: %w", u, err)
	}
	if code, msg, err = c.cmd(""); err != nil || code != 226 {
		return nil, fmt.Errorf("fetch: ftp %s: transfer not completed: %d %s: %w", u, code, msg, gpgerr.ErrNoData)
	}
	c.cmd("QUIT")
	return data, nil
}

type ftpConn struct {
	r *bufio.Reader
	w io.Writer
}

// cmd sends a command (none if empty) and reads the (possibly multi-line)
// reply.
func (c *ftpConn) cmd(line string) (int, string, error) {
	if line != "" {
		if _, err := io.WriteString(c.w, line+"\r\n"); err != nil {
			return 0, "", err
		}
	}
	first, err := c.readLine()
	if err != nil {
		return 0, "", err
	}
	if len(first) < 4 {
		return 0, "", fmt.Errorf("short FTP reply %q", first)
	}
	code, err := strconv.Atoi(first[:3])
	if err != nil {
		return 0, "", fmt.Errorf("bad FTP reply %q", first)
	}
	if first[3] == '-' {
		for n := 0; ; n++ {
			l, err := c.readLine()
			if err != nil {
				return 0, "", err
			}
			if strings.HasPrefix(l, first[:3]+" ") || n > 100 {
				break
			}
		}
	}
	return code, strings.TrimSpace(first[4:]), nil
}

func (c *ftpConn) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := c.r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > 4096 {
			return "", fmt.Errorf("FTP reply line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}
