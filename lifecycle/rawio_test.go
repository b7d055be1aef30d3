package lifecycle

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unixPair returns both ends of a Unix socket connection.
func unixPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "S"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TestRawIO: the raw-syscall session I/O behaves as net.Conn does for
// everything the session code relies on.
func TestRawIO(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, srv net.Conn, r *rawIO, cli net.Conn)
	}{
		{"reads what the client wrote, waiting for it", func(t *testing.T, _ net.Conn, r *rawIO, cli net.Conn) {
			go func() { time.Sleep(20 * time.Millisecond); cli.Write([]byte("ISVALID x\n")) }()
			buf := make([]byte, 64)
			n, err := r.read(buf)
			if err != nil || string(buf[:n]) != "ISVALID x\n" {
				t.Fatalf("read = %q, %v", buf[:n], err)
			}
		}},
		{"writes all, also more than the socket buffer", func(t *testing.T, _ net.Conn, r *rawIO, cli net.Conn) {
			big := make([]byte, 4<<20)
			for i := range big {
				big[i] = byte(i)
			}
			got := make(chan []byte)
			go func() { b, _ := io.ReadAll(io.LimitReader(cli, int64(len(big)))); got <- b }()
			if n, err := r.write(big); n != len(big) || err != nil {
				t.Fatalf("write = %d, %v", n, err)
			}
			if b := <-got; string(b) != string(big) {
				t.Fatal("client read other bytes")
			}
		}},
		{"EOF when the client closed", func(t *testing.T, _ net.Conn, r *rawIO, cli net.Conn) {
			cli.Close()
			if _, err := r.read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("read after close = %v, want io.EOF", err)
			}
		}},
		{"a read deadline is a timeout", func(t *testing.T, srv net.Conn, r *rawIO, _ net.Conn) {
			srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			_, err := r.read(make([]byte, 8))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past deadline = %v, want a timeout", err)
			}
		}},
		{"a past deadline ends a pending read", func(t *testing.T, srv net.Conn, r *rawIO, _ net.Conn) {
			go func() { time.Sleep(20 * time.Millisecond); srv.SetReadDeadline(time.Unix(1, 0)) }()
			if _, err := r.read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read = %v, want the deadline", err)
			}
		}},
		{"closing ends a pending read with net.ErrClosed", func(t *testing.T, srv net.Conn, r *rawIO, _ net.Conn) {
			go func() { time.Sleep(20 * time.Millisecond); srv.Close() }()
			if _, err := r.read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read = %v, want net.ErrClosed", err)
			}
		}},
		{"writing to a client gone is EPIPE or ECONNRESET", func(t *testing.T, _ net.Conn, r *rawIO, cli net.Conn) {
			cli.Close()
			var err error
			for range 3 {
				if _, err = r.write([]byte("OK\n")); err != nil {
					break
				}
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("write = %v, want EPIPE", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := unixPair(t)
			r := newRawIO(srv)
			if r == nil {
				t.Fatal("no rawIO for a Unix socket")
			}
			tc.run(t, srv, r, cli)
		})
	}
	if newRawIO(&net.TCPConn{}) != nil {
		t.Error("rawIO for a TCP connection")
	}
}

// TestRawIONoAllocation: a command's read and write allocate nothing
// (the functions handed to RawConn are made once per connection).
func TestRawIONoAllocation(t *testing.T) {
	srv, cli := unixPair(t)
	r := newRawIO(srv)
	line, ok, buf := []byte("ISVALID x\n"), []byte("OK\n"), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := cli.Write(line); err != nil {
			t.Fatal(err)
		}
		if _, err := r.read(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := r.write(ok); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cli, buf[:3]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per command, want 0", allocs)
	}
}

// TestRawIOPeek: an interactive read leaves the bytes it returned in the
// socket (a peek) until the next read, which consumes them before
// returning only what came after; the bytes a client sent reach the
// session once and in order, whatever the sizes of the writes and of the
// read buffers (interactive and bulk reads mixed).
func TestRawIOPeek(t *testing.T) {
	t.Run("the command stays queued until the next read", func(t *testing.T) {
		srv, cli := unixPair(t)
		r := newRawIO(srv)
		buf := make([]byte, 64)
		readLine := func(line string) {
			t.Helper()
			readWant(t, r.read, line)
			if q := queued(t, srv); q != len(line) {
				t.Fatalf("%d bytes queued after reading %q, want %d (peeked)", q, line, len(line))
			}
		}
		cli.Write([]byte("ISVALID a\n"))
		readLine("ISVALID a\n")
		// The next read consumes it, finds nothing newer and waits.
		srv.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		if n, err := r.read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read = %q, %v; want a timeout", buf[:n], err)
		}
		if q := queued(t, srv); q != 0 {
			t.Fatalf("%d bytes queued while waiting, want 0 (consumed)", q)
		}
		srv.SetReadDeadline(time.Time{})
		cli.Write([]byte("BYE\n"))
		readLine("BYE\n")
		// EOF: the hang-up reaches the netpoller before the session
		// reads again (while this goroutine sleeps, an idle thread
		// polls), and the read that consumes BYE does not report it.
		cli.Close()
		time.Sleep(20 * time.Millisecond)
		srv.SetReadDeadline(time.Now().Add(5 * time.Second)) // a wait that misses it fails, not hangs
		if n, err := r.read(buf); err != io.EOF {
			t.Fatalf("read after close = %q, %v; want EOF", buf[:n], err)
		}
		if q := queued(t, srv); q != 0 {
			t.Fatalf("%d bytes queued at EOF", q)
		}
	})
	t.Run("bytes sent before the next read come with the consuming read", func(t *testing.T) {
		srv, cli := unixPair(t)
		r := newRawIO(srv)
		cli.Write([]byte("ISVALID a\n"))
		readWant(t, r.read, "ISVALID a\n")
		cli.Write([]byte("ISVALID bb\n")) // queued when Write returns (Unix socket)
		readWant(t, r.read, "ISVALID bb\n")
		if q := queued(t, srv); q != 0 {
			t.Fatalf("%d bytes queued, want 0 (consumed with the first command)", q)
		}
	})
	t.Run("closing after the last answer ends the client's stream cleanly", func(t *testing.T) {
		srv, cli := unixPair(t)
		c := RawConn(srv)
		cli.Write([]byte("BYE\n"))
		readWant(t, c.Read, "BYE\n")
		if _, err := c.Write([]byte("OK closing connection\n")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(cli)
		if err != nil || string(got) != "OK closing connection\n" {
			t.Fatalf("client read %q, %v; want the answer, then EOF (not a reset)", got, err)
		}
	})
	t.Run("every byte once, in order", func(t *testing.T) {
		srv, cli := unixPair(t)
		r := newRawIO(srv)
		rng := rand.New(rand.NewPCG(1, 2))
		want := make([]byte, 1<<20)
		for i := range want {
			want[i] = byte(rng.IntN(256))
		}
		go func() {
			for p := want; len(p) > 0; {
				n := min(len(p), 1+rng.IntN(9000))
				if _, err := cli.Write(p[:n]); err != nil {
					return
				}
				p = p[n:]
			}
		}()
		var got []byte
		buf := make([]byte, 8192)
		sizes := rand.New(rand.NewPCG(3, 4))
		for len(got) < len(want) {
			n, err := r.read(buf[:1+sizes.IntN(len(buf))])
			if err != nil {
				t.Fatalf("read after %d bytes: %v", len(got), err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the session read other bytes than the client wrote")
		}
	})
}

// readWant reads once and fails unless the read returns want.
func readWant(t *testing.T, read func([]byte) (int, error), want string) {
	t.Helper()
	buf := make([]byte, 64)
	n, err := read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read = %q, %v; want %q", buf[:n], err, want)
	}
}

// queued returns the bytes waiting in c's receive queue (SIOCINQ).
func queued(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// TestRawIOPoll: a session polls for its client's next bytes before
// parking when the client was quick, stops when it is slow, and only one
// session polls at a time. Windows are long here (seconds) or short
// (a millisecond) against the writers' delays so that no outcome
// depends on the machine's speed.
func TestRawIOPoll(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	// later writes p to c after d, from another goroutine.
	later := func(c net.Conn, d time.Duration, p string) {
		go func() { time.Sleep(d); c.Write([]byte(p)) }()
	}
	for _, tc := range []struct {
		name       string
		spin       bool          // the session polls at its next wait
		canSpin    bool          // more than one processor
		window     time.Duration // how long it polls
		delay      time.Duration // when the client writes
		wantPolled int           // waits ended by polling
		wantSpin   bool          // polls at the wait after
	}{
		{"a quick client is read while polling", true, true, 5 * time.Second, 20 * time.Millisecond, 1, true},
		{"a slow client turns polling off", true, true, time.Millisecond, 100 * time.Millisecond, 0, false},
		{"and a quick one on again, after a parked wait", false, true, 5 * time.Second, 20 * time.Millisecond, 0, true},
		{"one processor: never polls, even for a quick client", false, false, 5 * time.Second, 20 * time.Millisecond, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := unixPair(t)
			r := newRawIO(srv)
			r.spin, r.canSpin, r.window = tc.spin, tc.canSpin, tc.window
			later(cli, tc.delay, "ISVALID a\n")
			readWant(t, r.read, "ISVALID a\n")
			if r.polled != tc.wantPolled || r.spin != tc.wantSpin {
				t.Fatalf("polled %d, polls next %v; want %d, %v", r.polled, r.spin, tc.wantPolled, tc.wantSpin)
			}
		})
	}
	t.Run("a hang-up ends the polling", func(t *testing.T) {
		srv, cli := unixPair(t)
		r := newRawIO(srv)
		r.spin, r.canSpin, r.window = true, true, 5*time.Second
		go func() { time.Sleep(20 * time.Millisecond); cli.Close() }()
		start := time.Now()
		if _, err := r.read(make([]byte, 8)); err != io.EOF || r.polled != 1 {
			t.Fatalf("read = %v after %v, polled %d; want EOF found by polling", err, time.Since(start), r.polled)
		}
	})
	t.Run("one session polls at a time", func(t *testing.T) {
		srvA, cliA := unixPair(t)
		a := newRawIO(srvA)
		a.spin, a.canSpin, a.window = true, true, 5*time.Second
		done := make(chan error)
		go func() {
			_, err := a.read(make([]byte, 64))
			done <- err
		}()
		for wait := time.Now(); !spinning.Load(); time.Sleep(time.Millisecond) {
			if time.Since(wait) > 2*time.Second {
				t.Fatal("the first session does not poll")
			}
		}
		srvB, cliB := unixPair(t)
		b := newRawIO(srvB)
		b.spin, b.canSpin, b.window = true, true, 5*time.Second
		later(cliB, 20*time.Millisecond, "ISVALID b\n")
		readWant(t, b.read, "ISVALID b\n")
		if b.polled != 0 {
			t.Fatal("a second session polled while the first one did")
		}
		cliA.Write([]byte("ISVALID a\n"))
		if err := <-done; err != nil || a.polled != 1 {
			t.Fatalf("first session: %v, polled %d; want its command found by polling", err, a.polled)
		}
	})
}
