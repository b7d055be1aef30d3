package lifecycle

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/config"
)

// startInProcess runs a daemon on a temporary socket inside the test
// process and returns the socket path and a stop function.
func startInProcess(t *testing.T, extra ...string) (string, *Daemon, func()) {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "dmd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	args := append([]string{"--homedir", home, "--no-options"}, extra...)
	l, err := config.Load(args)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err := New(l, args, &syncWriter{w: &logs})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, "S.dirmngr")
	ln, err := Listen(path, 64)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ln, path) }()
	stop := func() {
		d.Shutdown()
		d.stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("daemon did not stop")
		}
	}
	return path, d, stop
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func session(path string, cmds ...string) ([]string, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	var out []string
	readReply := func() error {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			line = strings.TrimSuffix(line, "\n")
			if strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, line)
			if strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "ERR") {
				return nil
			}
		}
	}
	if err := readReply(); err != nil {
		return out, fmt.Errorf("greeting: %w", err)
	}
	for _, cmd := range cmds {
		if _, err := fmt.Fprintf(c, "%s\n", cmd); err != nil {
			return out, err
		}
		if err := readReply(); err != nil {
			return out, fmt.Errorf("%s: %w", cmd, err)
		}
	}
	return out, nil
}

// 100 concurrent sessions: all served, and the goroutines return to the
// baseline afterwards.
func TestConcurrentSessions(t *testing.T) {
	path, _, stop := startInProcess(t)
	defer stop()
	if _, err := session(path, "NOP"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := session(path, "GETINFO version", "OPTION audit-events=1", "GETINFO session_id", "BYE")
			if err != nil {
				errs <- err
				return
			}
			want := "OK Dirmngr 2.2.40 at your service|D 2.2.40|OK|OK|"
			if got := strings.Join(out, "|"); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "|OK|OK closing connection") {
				errs <- fmt.Errorf("unexpected replies %q", got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("goroutines: %d after the sessions, baseline %d", n, base)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path, _, stop := startInProcess(t)
	defer stop()
	if _, err := Listen(path, 1); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("Listen on a live socket: %v", err)
	}
	if _, err := session(path, "NOP"); err != nil {
		t.Fatalf("live daemon disturbed: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "S.dirmngr")
	os.WriteFile(path, []byte("data"), 0o600)
	if _, err := Listen(path, 1); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("got %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "data" {
		t.Fatal("regular file was touched")
	}
}

func TestInfoLine(t *testing.T) {
	if got := InfoLine("/h/S.dirmngr", 42, false); got != "DIRMNGR_INFO=/h/S.dirmngr:42:1; export DIRMNGR_INFO;" {
		t.Error(got)
	}
	if got := InfoLine("/h/S.dirmngr", 42, true); got != "setenv DIRMNGR_INFO /h/S.dirmngr:42:1;" {
		t.Error(got)
	}
}
