package lifecycle

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
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

// Reading a command without waking its sender. A Unix stream socket
// charges the bytes a client wrote to the client's socket until they are
// consumed; consuming them frees that room and wakes whoever sleeps on
// the client's socket, which during a ping-pong is the client itself,
// blocked in its read for our answer. It wakes, finds nothing and sleeps
// again: a second wakeup (an inter-processor interrupt on a VM) per
// command, for nothing. So an interactive read (the previous read did not
// fill the buffer) peeks the bytes (MSG_PEEK) and consumes them at the
// start of the next read, after the answer was written: by then the
// answer has woken the client and nobody sleeps on its socket. A bulk
// transfer (reads that fill the buffer) reads plainly, so it pays no
// second copy.

// Polling before parking. In a ping-pong (gpgsm checking a chain, a
// squid helper, dirmngr-client --squid-mode, a batch of ISVALIDs) the
// client's next command follows our answer within microseconds. Parking
// on the netpoller in between costs a wakeup of the daemon's thread for
// every command, which on a VM is an inter-processor interrupt and an
// exit to the host: on the build VM more than half of a command's round
// trip (docs/performance.md). A session whose client came back within
// spinWindow last time therefore polls its socket (non-blocking peeks)
// for up to spinWindow before it parks; a client slower than that turns
// the polling off for its session until it is quick again. At most one
// session polls at a time (spinning), and none when the daemon has one
// processor, where polling would keep the client from running: the
// polling costs at most one processor for spinWindow per command.

// spinWindow is how long a session polls for its client's next bytes
// before parking.
const spinWindow = 50 * time.Microsecond

// spinning is held by the one session that polls.
var spinning atomic.Bool

// rawIO reads and writes a Unix socket with raw system calls. The
// functions given to RawConn are made once, with their arguments and
// results in the struct, so that a command costs no allocation; one
// goroutine reads and one writes at a time (the session's).
type rawIO struct {
	rc      syscall.RawConn
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool

	rp   []byte // read: the buffer, bytes read, error
	rn   int
	rerr syscall.Errno
	owed int  // bytes returned by a peek, still to consume
	bulk bool // the last read filled its buffer: read plainly

	wp    []byte // write: what is left to write, error
	wdone int
	werr  syscall.Errno

	// Polling: spin is whether the next wait polls first, canSpin
	// whether the process has more than one processor, window how long
	// (spinWindow; tests change it), waited whether this read has found
	// the socket empty, since when, polled how many waits the polling
	// ended (tests).
	spin    bool
	canSpin bool // more than one processor
	window  time.Duration
	waited  bool
	since   time.Time
	polled  int
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
	multi := runtime.GOMAXPROCS(0) > 1
	r := &rawIO{rc: rc, spin: multi, canSpin: multi, window: spinWindow}
	r.readFn, r.writeFn = r.readOnce, r.writeAll
	return r
}

// readOnce is RawConn.Read's function: it consumes the bytes a peek
// returned before, then peeks (or, in bulk, reads) once, retried on
// EINTR. On the first EAGAIN of a read it polls (poll) when the session
// may; false (park until the socket is readable) when nothing came. The
// time from that first EAGAIN to the bytes decides whether the next wait
// polls.
//
// The consuming read asks for the whole buffer: bytes past the ones owed
// arrived since and are returned (consumed: the client that sent them is
// not waiting for this answer's wakeup any more). When it returns exactly
// the bytes owed, the peek still follows even though the socket was
// empty a moment ago: a read that returns data does not report a hang-up
// queued behind it, and the netpoller's edge for that hang-up may already
// have been taken (RawConn.Read resets it before calling readOnce), so
// waiting at once could wait forever (TestRawIOPeek, "EOF").
func (r *rawIO) readOnce(fd uintptr) bool {
	if r.owed > 0 {
		if done, ok := r.consume(fd); done {
			return ok
		}
	}
	flags := uintptr(syscall.MSG_PEEK)
	if r.bulk {
		flags = 0
	}
	m, e := r.recv(fd, flags)
	if e == syscall.EAGAIN {
		if r.waited { // woken by the netpoller for nothing
			return false
		}
		r.waited, r.since = true, time.Now()
		if m, e = r.poll(fd, flags); e == syscall.EAGAIN {
			return false // park
		}
	}
	if r.waited { // poll again next time if the client came back quickly
		r.spin = r.canSpin && time.Since(r.since) < r.window
	}
	r.rn, r.rerr = m, e
	if e == 0 {
		if flags != 0 {
			r.owed = m
		}
		r.bulk = m == len(r.rp)
	}
	return true
}

// recv reads (flags 0) or peeks (MSG_PEEK) once, retried on EINTR.
func (r *rawIO) recv(fd, flags uintptr) (int, syscall.Errno) {
	for {
		m, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.rp[0])), uintptr(len(r.rp)), flags, 0, 0)
		if e != syscall.EINTR {
			return int(m), e
		}
	}
}

// poll retries recv for up to r.window when the session polls and no
// other session does; EAGAIN when nothing came (readOnce then turns the
// polling off for this session until its client is quick again).
func (r *rawIO) poll(fd, flags uintptr) (int, syscall.Errno) {
	if !r.spin || !spinning.CompareAndSwap(false, true) {
		return 0, syscall.EAGAIN
	}
	defer spinning.Store(false)
	for time.Since(r.since) < r.window {
		if m, e := r.recv(fd, flags); e != syscall.EAGAIN {
			r.polled++
			return m, e
		}
	}
	return 0, syscall.EAGAIN
}

// consume reads the bytes owed. done reports that readOnce has its
// answer (bytes read, or an error, in r.rn, r.rerr); ok is readOnce's
// result then.
func (r *rawIO) consume(fd uintptr) (done, ok bool) {
	for r.owed > 0 {
		m, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rp[0])), uintptr(len(r.rp)))
		n := int(m)
		switch {
		case e == syscall.EINTR:
			continue
		case e != 0:
			r.owed, r.rn, r.rerr = 0, 0, e
			return true, true
		case n == 0: // cannot happen: only this session consumes them
			r.owed = 0
			return false, false
		case n < r.owed:
			r.owed -= n
		case n > r.owed: // and newer bytes, consumed
			r.rn, r.rerr = copy(r.rp, r.rp[r.owed:n]), 0
			r.owed, r.bulk = 0, n == len(r.rp)
			return true, true
		default: // exactly the bytes owed: peek next (not wait at once,
			// which would miss a hang-up signalled before this read)
			r.owed = 0
		}
	}
	return false, false
}

// settle consumes the bytes owed before the session closes its socket:
// closing a Unix socket with unread bytes in its queue resets the
// connection, and the client would read ECONNRESET instead of EOF after
// the last answer (GnuPG's --server relay reported it). Only the
// session's goroutine may call it.
func (r *rawIO) settle() error {
	if r.owed == 0 {
		return nil
	}
	var buf [512]byte
	r.rp, r.rerr = buf[:], 0
	err := r.rc.Read(func(fd uintptr) bool {
		r.consume(fd) // newer bytes, if any, are drained with them
		return true
	})
	errno := r.rerr
	r.rp, r.owed = nil, 0
	if err != nil {
		return opError("read", err)
	}
	if errno != 0 {
		return opError("read", os.NewSyscallError("read", errno))
	}
	return nil
}

// writeAll is RawConn.Write's function: write(2) until r.wp is written
// or an error; false (wait for room) on EAGAIN.
func (r *rawIO) writeAll(fd uintptr) bool {
	for r.wdone < len(r.wp) {
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&r.wp[r.wdone])), uintptr(len(r.wp)-r.wdone))
		switch e {
		case 0:
			r.wdone += int(m)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// read is net.Conn.Read.
func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp, r.rn, r.rerr, r.waited = p, 0, 0, false
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rp = nil
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
	if len(p) == 0 {
		return 0, nil
	}
	r.wp, r.wdone, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	done, errno := r.wdone, r.werr
	r.wp = nil
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

// Close consumes what was read but not yet consumed (rawIO.settle), then
// closes the connection. Call it from the goroutine that reads.
// A failed settle (the client gone) is reported only when the close
// itself succeeds.
func (c *rawConn) Close() error {
	serr := c.io.settle()
	if err := c.Conn.Close(); err != nil {
		return err
	}
	return serr
}
