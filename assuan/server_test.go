package assuan_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/golden"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// testServer is a small application: ECHO returns its argument as data,
// STAT sends a status line, PANIC panics, ASK inquires with a 10-byte
// limit and returns what it got, BIG sends 2500 bytes of data.
func testServer() *assuan.Server {
	return &assuan.Server{
		Hello:       []string{"Home: /nowhere", "Test 1.0 at your service"},
		ErrorSource: gpgerr.SourceDirmngr,
		Commands: []assuan.Command{
			{Name: "ECHO", Help: "ECHO <text>\n\nReturn TEXT as data.", Handler: func(s *assuan.Session, a string) error {
				return s.Data([]byte(a))
			}},
			{Name: "STAT", Help: "STAT", Handler: func(s *assuan.Session, a string) error {
				return s.Status("PROGRESS", "line1\nline2\r")
			}},
			{Name: "PANIC", Help: "PANIC", Handler: func(s *assuan.Session, a string) error {
				panic("boom")
			}},
			{Name: "ASK", Help: "ASK", Handler: func(s *assuan.Session, a string) error {
				data, err := s.Inquire("WHAT", a, 10)
				if err != nil {
					return err
				}
				return s.Data(data)
			}},
			{Name: "BIG", Help: "BIG", Handler: func(s *assuan.Session, a string) error {
				return s.Data(bytes.Repeat([]byte("a%\n"), 834))
			}},
			{Name: "FAIL", Help: "FAIL", Handler: func(s *assuan.Session, a string) error {
				return gpgerr.NewError(gpgerr.ErrNoCRLKnown, "")
			}},
		},
		Option: func(s *assuan.Session, name, value string) error {
			if name == "known" {
				return nil
			}
			return gpgerr.ErrUnknownOption
		},
	}
}

// converse runs a session over a pipe, sends the client lines one at a
// time after reading each reply, and returns everything the server wrote.
func converse(t *testing.T, srv *assuan.Server, input string) string {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), a, nil); a.Close() }()
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(b)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
	}()
	b.SetWriteDeadline(time.Now().Add(5 * time.Second))
	b.Write([]byte(input))
	// Let the server answer everything, then hang up.
	time.Sleep(50 * time.Millisecond)
	b.Close()
	wg.Wait()
	<-done
	return out.String()
}

// TestTranscripts checks the exact server lines for client scripts against
// testdata/<name>.golden (UPDATE_GOLDEN=1 rewrites them). The goldens for
// the built-ins follow GnuPG dirmngr's captured replies.
func TestTranscripts(t *testing.T) {
	long := "ECHO " + strings.Repeat("x", 1001-len("ECHO ")) // 1001 bytes + LF
	cases := []struct{ name, input string }{
		{"builtins", "NOP\nBYE\n"},
		{"errors", "FOOBAR\nHELP NOSUCHCMD\n leading\nAUTH\nCANCEL\nEND\nD stray\nFAIL\n"},
		{"options", "OPTION\nOPTION =x\nOPTION -x\nOPTION known=\nOPTION --known = 1\nOPTION known\nOPTION unknown=1\n"},
		{"help", "HELP\nHELP echo\n"},
		{"case-crlf-comments", "echo Hello\r\n\n# a comment\nNoP\r\n"},
		{"data-escaping", "ECHO a%b\nBIG\nSTAT\n"},
		{"linelen-accepted", long + "\nNOP\n"},
		{"linelen-dropped", long + "y\nNOP\n"},
		{"panic", "PANIC\nNOP\n"},
		{"inquire", "ASK k\nD 12%0A\nD 3\nEND\nASK\nCAN\nASK\nD 0123456789abc\nD more\nEND\nASK\nNOP\nNOP\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := converse(t, testServer(), tc.input)
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
				if len(line) > 1000 {
					t.Errorf("line of %d bytes", len(line))
				}
				if strings.ContainsRune(line, '\r') {
					t.Errorf("raw CR in %q", line)
				}
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), []byte(got))
		})
	}
}

// TestDisconnectMidInquire: a client that hangs up during an INQUIRE ends
// only its own session; a concurrent session keeps working.
func TestDisconnectMidInquire(t *testing.T) {
	srv := testServer()
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), a, nil) }()
	r := bufio.NewReader(b)
	for {
		l, _ := r.ReadString('\n')
		if strings.HasPrefix(l, "OK") {
			break
		}
	}
	b.Write([]byte("ASK\n"))
	if l, _ := r.ReadString('\n'); l != "INQUIRE WHAT\n" {
		t.Fatalf("got %q", l)
	}
	// A second session works while the first waits.
	if got := converse(t, srv, "ECHO hi\n"); !strings.Contains(got, "D hi\nOK\n") {
		t.Fatalf("second session: %q", got)
	}
	b.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end after the client disconnected mid-inquiry")
	}
}

func TestClientTransact(t *testing.T) {
	srv := testServer()
	a, b := net.Pipe()
	go srv.ServeConn(context.Background(), a, nil)
	c, err := assuan.NewClient(b)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Hello) != 2 || c.Hello[1] != "OK Test 1.0 at your service" {
		t.Fatalf("hello %q", c.Hello)
	}
	var data []byte
	var status []string
	h := &assuan.Handlers{
		Data:   func(p []byte) error { data = append(data, p...); return nil },
		Status: func(k, a string) error { status = append(status, k+" "+a); return nil },
		Inquire: func(k, a string) ([]byte, error) {
			if k != "WHAT" {
				return nil, errors.New("unexpected")
			}
			return []byte("x\ny%"), nil
		},
	}
	ctx := context.Background()
	if err := c.Transact(ctx, "ASK", h); err != nil || string(data) != "x\ny%" {
		t.Fatalf("ASK: %v %q", err, data)
	}
	data = nil
	if err := c.Transact(ctx, "BIG", h); err != nil || !bytes.Equal(data, bytes.Repeat([]byte("a%\n"), 834)) {
		t.Fatalf("BIG: %v %d bytes", err, len(data))
	}
	if err := c.Transact(ctx, "STAT", h); err != nil || len(status) != 1 || status[0] != `PROGRESS line1\nline2\r` {
		t.Fatalf("STAT: %v %q", err, status)
	}
	err = c.Transact(ctx, "FAIL", h)
	if gpgerr.CodeOf(err) != gpgerr.ErrNoCRLKnown {
		t.Fatalf("FAIL: %v", err)
	}
	err = c.Transact(ctx, "NOSUCH", h)
	if gpgerr.CodeOf(err) != gpgerr.ErrAssUnknownCmd {
		t.Fatalf("NOSUCH: %v", err)
	}
	// An inquiry the client cannot answer is cancelled.
	h.Inquire = func(string, string) ([]byte, error) { return nil, errors.New("no") }
	if err := c.Transact(ctx, "ASK", h); gpgerr.CodeOf(err) != gpgerr.ErrAssCanceled {
		t.Fatalf("cancelled ASK: %v", err)
	}
	if err := c.Transact(ctx, "NOP", h); err != nil {
		t.Fatalf("NOP after cancel: %v", err)
	}
}

// TestInquireTimeout: a client that never answers an INQUIRE gets ERR
// Timeout after the short inquire timeout (not the idle timeout) and its
// session ends; the command's handler is released.
func TestInquireTimeout(t *testing.T) {
	srv := testServer()
	srv.IdleTimeout = time.Hour
	srv.InquireTimeout = 200 * time.Millisecond
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), a, nil) }()
	defer b.Close()
	r := bufio.NewReader(b)
	for {
		l, _ := r.ReadString('\n')
		if strings.HasPrefix(l, "OK") {
			break
		}
	}
	b.Write([]byte("ASK\n"))
	if l, _ := r.ReadString('\n'); l != "INQUIRE WHAT\n" {
		t.Fatalf("got %q", l)
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := r.ReadString('\n')
	if err != nil || l != "ERR 167772222 Timeout <Dirmngr>\n" {
		t.Fatalf("after an unanswered INQUIRE: %q %v", l, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end after the inquire timeout")
	}
	if assuan.DefaultInquireTimeout > time.Minute {
		t.Fatalf("default inquire timeout %s is not short", assuan.DefaultInquireTimeout)
	}
}
