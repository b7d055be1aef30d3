package lifecycle

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dialReady connects and reads the greeting up to its OK line.
func dialReady(t *testing.T, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if strings.HasPrefix(line, "OK") {
			return c, r
		}
	}
}

// closedByDaemon reports whether the daemon closed c (EOF within 5 s).
func closedByDaemon(c net.Conn, r *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := r.ReadString('\n')
	return err == io.EOF
}

// TestIdleFloodCannotLockOut (issue 13 item 6): with every slot taken by
// idle sockets, a live client is still served; the daemon closes the
// sessions idle the longest, oldest first. Sessions that are running a
// command are never closed; only when all are busy is a client refused.
func TestIdleFloodCannotLockOut(t *testing.T) {
	const max = 4
	path, _, stop := startInProcess(t, "--max-sessions", "4")
	defer stop()
	type idle struct {
		c net.Conn
		r *bufio.Reader
	}
	var flood []idle
	for range max {
		c, r := dialReady(t, path)
		flood = append(flood, idle{c, r})
		time.Sleep(10 * time.Millisecond) // distinct idle ages
	}
	// Live clients keep their sessions open, so that each one needs a
	// slot: the first takes flood[0]'s, the second flood[1]'s (the live
	// client before it has waited less long than the flood).
	for i := range 2 {
		c, r := dialReady(t, path)
		c.Write([]byte("NOP\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if line, err := r.ReadString('\n'); err != nil || line != "OK\n" {
			t.Fatalf("live client %d behind %d idle sockets: %q %v", i, max, line, err)
		}
		if !closedByDaemon(flood[i].c, flood[i].r) {
			t.Fatalf("idle session %d (oldest) was not closed", i)
		}
	}
	// The younger idle sessions are still open and usable.
	flood[max-1].c.Write([]byte("NOP\n"))
	flood[max-1].c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := flood[max-1].r.ReadString('\n'); err != nil || line != "OK\n" {
		t.Fatalf("younger idle session: %q %v", line, err)
	}

	// All slots busy (each session waits in a download that hangs):
	// nothing can be closed and the client is refused with a clear error.
	release := make(chan struct{})
	var inDownload atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inDownload.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	for i := range max {
		c, _ := dialReady(t, path)
		fmt.Fprintf(c, "LOADCRL --url %s/ca%d.crl\n", hang.URL, i)
	}
	for deadline := time.Now().Add(10 * time.Second); inDownload.Load() < max; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d sessions reached their download", inDownload.Load())
		}
	}
	out, _ := session(path, "NOP")
	if len(out) == 0 || !strings.HasPrefix(out[0], "ERR 167772417 General IPC error <Dirmngr> - too many sessions") {
		t.Fatalf("client while all sessions are busy got %q", out)
	}
}
