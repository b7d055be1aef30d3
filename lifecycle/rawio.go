package lifecycle

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// Session I/O without entersyscall. A session's socket is non-blocking
// (Go's netpoller), so its read and write system calls return at once:
// data or EAGAIN. Through net.Conn each of them is still announced to the
// scheduler (entersyscall), and when the daemon was idle between two
// commands, which on one connection it is every time, that announcement
// wakes the sysmon thread from its deep sleep so that it could take the
// processor back should the call block. It never blocks; the futex
// wakeup and the sysmon thread's run cost more than the read itself
// (docs/performance.md). rawIO makes the same calls with RawSyscall
// inside RawConn.Read/Write, which still park the goroutine on the
// netpoller on EAGAIN and honour the connection's deadlines.

// rawIO reads and writes a Unix socket with raw system calls.
type rawIO struct {
	rc syscall.RawConn
}

// newRawIO returns a rawIO for c, or nil when c is not a Unix socket.
func newRawIO(c net.Conn) *rawIO {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawIO{rc: rc}
}

// read is net.Conn.Read.
func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(m), e
			return e != syscall.EAGAIN
		}
	})
	switch {
	case err != nil:
		return 0, opError("read", err)
	case errno != 0:
		return 0, opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// write is net.Conn.Write: all of p, or an error.
func (r *rawIO) write(p []byte) (int, error) {
	done := 0
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[done])), uintptr(len(p)-done))
			switch e {
			case 0:
				done += int(m)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, opError("write", err)
	case errno != 0:
		return done, opError("write", os.NewSyscallError("write", errno))
	}
	return done, nil
}

// opError wraps err as net.Conn methods do (a deadline stays a timeout,
// a closed connection stays net.ErrClosed for errors.Is).
func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Err: err}
}

// RawConn returns c with its reads and writes made by rawIO when c is a
// Unix socket (c itself otherwise), for servers of the assuan package
// other than the daemon's (the daemon's sessions use rawIO directly).
func RawConn(c net.Conn) net.Conn {
	if r := newRawIO(c); r != nil {
		return &rawConn{Conn: c, io: r}
	}
	return c
}

// rawConn is a net.Conn reading and writing through rawIO.
type rawConn struct {
	net.Conn
	io *rawIO
}

// Read reads with a raw system call.
func (c *rawConn) Read(p []byte) (int, error) { return c.io.read(p) }

// Write writes with raw system calls.
func (c *rawConn) Write(p []byte) (int, error) { return c.io.write(p) }
