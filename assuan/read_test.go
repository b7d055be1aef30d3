package assuan_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
)

// TestIdleDeadlineMovesOn: the read deadline armed for one line is moved
// on, not obeyed, when it fires while the next line is still within its
// own idle time — also when half of that line had already arrived — and
// a session really idle for the timeout still ends.
func TestIdleDeadlineMovesOn(t *testing.T) {
	const idle = 600 * time.Millisecond
	srv := testServer()
	srv.IdleTimeout = idle
	srv.Commands = append(srv.Commands, assuan.Command{Name: "SLOW", Help: "SLOW", Handler: func(s *assuan.Session, a string) error {
		time.Sleep(idle * 2 / 3)
		return nil
	}})
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), a, nil) }()
	defer b.Close()
	b.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(b)
	expect := func(want string) {
		t.Helper()
		if l, err := r.ReadString('\n'); l != want || err != nil {
			t.Fatalf("got %q, %v; want %q", l, err, want)
		}
	}
	expect("# Home: /nowhere\n")
	expect("OK Test 1.0 at your service\n")
	b.Write([]byte("SLOW\n"))
	expect("OK\n")
	// The deadline armed before SLOW fires about idle/3 from now.
	time.Sleep(idle / 6)
	b.Write([]byte("NO"))
	time.Sleep(idle / 2)
	b.Write([]byte("P\n"))
	expect("OK\n")
	b.Write([]byte("ECHO x\n"))
	expect("D x\n")
	expect("OK\n")
	start := time.Now()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "idle") {
			t.Fatalf("ServeConn after idling: %v", err)
		}
		if el := time.Since(start); el < idle*9/10 {
			t.Fatalf("session ended after %s idle, timeout %s", el, idle)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle session did not end")
	}
}
