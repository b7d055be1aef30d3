package integration

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
)

// notifyListener collects sd_notify datagrams.
func notifyListener(t *testing.T, dir string) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 32)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(ch)
				return
			}
			for _, l := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				ch <- l
			}
		}
	}()
	return path, ch
}

func expectNotify(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("notify socket closed before %q", want)
			}
			if l == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q notification", want)
		}
	}
}

// TestSupervised runs the daemon under systemd-socket-activate: the
// listening socket comes from LISTEN_FDS and READY/RELOADING/STOPPING are
// reported on NOTIFY_SOCKET.
func TestSupervised(t *testing.T) {
	activate := requireTool(t, "systemd-socket-activate")
	ours := bin(t, "dirmngr")
	home := newHome(t)
	notify, ch := notifyListener(t, home)
	sock := filepath.Join(home, "S.sup")
	cmd := exec.Command(activate, "-l", sock, "-E", "NOTIFY_SOCKET="+notify, "-E", "GORACE=atexit_sleep_ms=0",
		ours, "--supervised", "--homedir", home)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go io.Copy(io.Discard, stderr)
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }, "activation socket")

	// The first connection makes systemd-socket-activate exec the daemon.
	c, err := assuan.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	expectNotify(t, ch, "READY=1")
	var version []byte
	if err := c.Transact(context.Background(), "GETINFO version", &assuan.Handlers{Data: func(p []byte) error { version = append(version, p...); return nil }}); err != nil || string(version) != "2.2.40" {
		t.Fatalf("GETINFO version: %q %v", version, err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	expectNotify(t, ch, "RELOADING=1")
	expectNotify(t, ch, "READY=1")
	if err := c.Transact(context.Background(), "KILLDIRMNGR", &assuan.Handlers{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	expectNotify(t, ch, "STOPPING=1")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("supervised daemon did not exit after KILLDIRMNGR")
	}
	// systemd owns the socket file: it is left in place.
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("activation socket removed: %v", err)
	}
}

// TestIdleTimeout: a session that sends nothing for --idle-timeout seconds
// is closed; the daemon keeps serving.
func TestIdleTimeout(t *testing.T) {
	ours := bin(t, "dirmngr")
	home := newHome(t)
	startDaemon(t, ours, home, "--idle-timeout", "1")
	conn, err := net.Dial("unix", filepath.Join(home, "S.dirmngr"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	start := time.Now()
	for {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.ReadString('\n'); err != nil {
			if err != io.EOF {
				t.Fatalf("expected EOF from the idle timeout, got %v", err)
			}
			break
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("session closed after %v, before the idle timeout", d)
	}
	if out := gca(t, home, "GETINFO version"); !strings.Contains(out, "D 2.2.40") {
		t.Fatalf("daemon not serving after an idle timeout: %q", out)
	}
}
