package integration

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestCacheModesUnderUmask0 (threats-and-tests §4.I 57): started with
// umask 000, our daemon creates crls.d 0700 and every file in it 0600
// (GnuPG creates crls.d 0700 too), after a CRL load.
func TestCacheModesUnderUmask0(t *testing.T) {
	l := newLab(t)
	home := newHome(t)
	wrapper := testpki.WriteFile(t.TempDir(), "dirmngr-umask0", []byte("#!/bin/sh\numask 000\nexec "+bin(t, "dirmngr")+" \"$@\"\n"))
	os.Chmod(wrapper, 0o755)
	startDaemon(t, wrapper, home)
	files := t.TempDir()
	rootDER := testpki.WriteFile(files, "root.der", l.root.DER())
	l.mu.Lock()
	crlFile := testpki.WriteFile(files, "root.crl", l.srv["/root.crl"])
	l.mu.Unlock()
	out := gca(t, home, "/definqfile SENDCERT_SKI "+rootDER, "/definqfile SENDCERT "+rootDER, "LOADCRL "+crlFile)
	if !strings.HasSuffix(out, "OK\n") || strings.Contains(out, "ERR") {
		t.Fatalf("LOADCRL: %q", out)
	}
	gca(t, home, "KILLDIRMNGR")
	cache := filepath.Join(home, "crls.d")
	n := 0
	err := filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("walking %s: %v (%d entries: the CRL was not stored?)", cache, err, n)
	}
}

// TestSecondDaemonOnSameCache (threats-and-tests §4.I 58): a second
// daemon on the same homedir but another socket finds the CRL cache
// locked and exits at once with a clear message instead of waiting for
// the lock; the first daemon keeps serving.
func TestSecondDaemonOnSameCache(t *testing.T) {
	home := newHome(t)
	startDaemon(t, bin(t, "dirmngr"), home)
	other := filepath.Join(newHome(t), "S.other")
	cmd := exec.Command(bin(t, "dirmngr"), "--homedir", home, "--daemon", "--sh", "--socket-name", other)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	done := make(chan []byte, 1)
	start := time.Now()
	go func() {
		out, _ := cmd.CombinedOutput()
		done <- out
	}()
	select {
	case out := <-done:
		// The lock wait is 1 s; 8 s leaves room for a loaded machine but
		// not for the 10 s a hanging background start is given.
		if cmd.ProcessState.Success() || !strings.Contains(string(out), "in use by another process") || time.Since(start) > 8*time.Second {
			t.Errorf("second daemon on the same cache: %v after %v\n%s", cmd.ProcessState, time.Since(start), out)
		}
		if _, err := os.Stat(other); err == nil {
			gcaSocket(t, other, "KILLDIRMNGR", "/bye")
			t.Errorf("second daemon serves on %s", other)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("second daemon on the same cache still running after 20 s")
	}
	if got := gca(t, home, "GETINFO version"); got != "D 2.2.40\nOK\n" {
		t.Errorf("first daemon no longer serves: %q", got)
	}
}
