package integration

import (
	"bytes"
	"fmt"
	"runtime"
	"syscall"

	"github.com/dirmngr/dirmngr/assuan"
)

// leanClient is the load generator of the ISVALID rate benchmarks: an
// Assuan client on a Unix socket that does nothing but blocking read and
// write system calls on its own locked thread, like gpgsm's libassuan.
// The package's assuan.Client goes through Go's netpoller and cost about
// as much CPU per command as the daemons it measured, which compressed
// every ratio towards 1; a C echo server answers this client at about
// 100k commands/s on one connection on the build machine
// (docs/performance.md), which bounds any daemon's rate.
type leanClient struct {
	fd   int
	buf  []byte // received, not yet returned: buf[:n]
	n    int
	out  []byte // the line last returned
	cert []byte // sent, escaped, for INQUIRE SENDCERT / SENDCERT_SKI
}

// dialLean connects to the socket and reads the greeting. The calling
// goroutine is locked to its thread until close.
func dialLean(path string, cert []byte) (*leanClient, error) {
	runtime.LockOSThread()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("connect %s: %w", path, err)
	}
	c := &leanClient{fd: fd, buf: make([]byte, 8192), cert: assuan.EscapeData(cert)}
	if _, err := c.reply(); err != nil {
		c.close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return c, nil
}

func (c *leanClient) close() {
	syscall.Close(c.fd)
	runtime.UnlockOSThread()
}

// line returns the next line without its LF (valid until the next call).
func (c *leanClient) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(c.buf[:c.n], '\n'); i >= 0 {
			c.out = append(c.out[:0], c.buf[:i]...)
			c.n = copy(c.buf, c.buf[i+1:c.n])
			return c.out, nil
		}
		if c.n == len(c.buf) {
			return nil, fmt.Errorf("line too long")
		}
		m, err := syscall.Read(c.fd, c.buf[c.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if m == 0 {
			return nil, fmt.Errorf("connection closed by the server")
		}
		c.n += m
	}
}

func (c *leanClient) write(p []byte) error {
	for len(p) > 0 {
		m, err := syscall.Write(c.fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		p = p[m:]
	}
	return nil
}

// reply reads up to the command's OK or ERR line, answering INQUIREs
// (ISTRUSTED: "1"; SENDCERT, SENDCERT_SKI: the certificate; others:
// nothing) and skipping status and data lines. It returns the final line.
func (c *leanClient) reply() ([]byte, error) {
	for {
		l, err := c.line()
		if err != nil {
			return nil, err
		}
		switch {
		case bytes.HasPrefix(l, []byte("OK")), bytes.HasPrefix(l, []byte("ERR ")):
			return l, nil
		case bytes.HasPrefix(l, []byte("INQUIRE ISTRUSTED ")):
			err = c.write([]byte("D 1\nEND\n"))
		case bytes.HasPrefix(l, []byte("INQUIRE SENDCERT")):
			var b bytes.Buffer
			for p := c.cert; len(p) > 0; {
				n := min(len(p), 900)
				for n > 0 && n < len(p) && (p[n-1] == '%' || (n > 1 && p[n-2] == '%')) {
					n-- // do not split an escape
				}
				b.WriteString("D ")
				b.Write(p[:n])
				b.WriteByte('\n')
				p = p[n:]
			}
			b.WriteString("END\n")
			err = c.write(b.Bytes())
		case bytes.HasPrefix(l, []byte("INQUIRE ")):
			err = c.write([]byte("END\n"))
		}
		if err != nil {
			return nil, err
		}
	}
}

// transact sends one command line (with its LF) and returns the final
// reply line.
func (c *leanClient) transact(cmd []byte) ([]byte, error) {
	if err := c.write(cmd); err != nil {
		return nil, err
	}
	return c.reply()
}
