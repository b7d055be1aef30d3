package lifecycle

import (
	"net"
	"sync/atomic"
	"time"
)

// Idle sessions and the session cap. A client that opens a connection and
// sends nothing costs a session slot until the idle timeout (default an
// hour), so a flood of --max-sessions idle sockets would refuse every live
// client. Instead, when the cap is reached the daemon closes the session
// that has waited longest for its client (oldest first) and serves the new
// one; only when no session is waiting (all are busy running commands) is
// a client refused. A session is waiting while its goroutine is blocked
// reading from the client (between commands, or during an unanswered
// INQUIRE) or writing to a client that does not read. A live client such as gpgsm waits only between its commands, a
// few milliseconds, so it is always younger than the flood's sockets.

// trackedConn records since when a read from or a write to the client has
// been pending.
type trackedConn struct {
	net.Conn
	id      uint64
	reading atomic.Int64 // UnixNano when the pending Read began; 0 = none
	writing atomic.Int64 // likewise for Write
	raw     *rawIO       // non-nil for Unix sockets (rawio.go)
}

// Read reads from the client, marking the session as waiting meanwhile.
func (c *trackedConn) Read(p []byte) (int, error) {
	c.reading.Store(time.Now().UnixNano())
	var n int
	var err error
	if c.raw != nil {
		n, err = c.raw.read(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	c.reading.Store(0)
	return n, err
}

// Write writes to the client, marking the session as waiting meanwhile.
func (c *trackedConn) Write(p []byte) (int, error) {
	c.writing.Store(time.Now().UnixNano())
	var n int
	var err error
	if c.raw != nil {
		n, err = c.raw.write(p)
	} else {
		n, err = c.Conn.Write(p)
	}
	c.writing.Store(0)
	return n, err
}

// waitingSince returns when the earlier pending read or write began (ok
// false: none is pending).
func (c *trackedConn) waitingSince() (time.Time, bool) {
	r, w := c.reading.Load(), c.writing.Load()
	if r == 0 || (w != 0 && w < r) {
		r = w
	}
	return time.Unix(0, r), r != 0
}

// evictOldestIdle closes the session that has waited longest for its
// client and returns its id; ok is false when no session is waiting.
func (d *Daemon) evictOldestIdle() (id uint64, idle time.Duration, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var oldest *trackedConn
	var oldestAt time.Time
	for c := range d.conns {
		tc, isTracked := c.(*trackedConn)
		if !isTracked {
			continue
		}
		if at, waiting := tc.waitingSince(); waiting && (oldest == nil || at.Before(oldestAt)) {
			oldest, oldestAt = tc, at
		}
	}
	if oldest == nil {
		return 0, 0, false
	}
	oldest.Conn.Close()
	delete(d.conns, oldest)
	return oldest.id, time.Since(oldestAt), true
}

// acquireSlot takes a session slot for a new client, closing the longest
// idle session when all slots are taken. It reports false when every
// session is busy.
func (d *Daemon) acquireSlot() bool {
	select {
	case d.sem <- struct{}{}:
		return true
	default:
	}
	id, idle, ok := d.evictOldestIdle()
	if !ok {
		return false
	}
	d.Log.Info("too many sessions - closing the session idle the longest", "session", id, "idle", idle.Round(time.Millisecond).String(), "max", cap(d.sem))
	select {
	case d.sem <- struct{}{}:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}
