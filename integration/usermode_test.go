package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobodyUID is the unprivileged user the user-mode tests run as when the
// test itself runs as root.
const nobodyUID = 65534

// unitExecStart returns the ExecStart= command line of a packaged unit,
// split into words.
func unitExecStart(t *testing.T, unit string) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	f, err := os.Open(filepath.Join(filepath.Dir(filepath.Dir(file)), "packaging", "systemd", unit))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("%s has no ExecStart=", unit)
	return nil
}

// unprivileged returns a command running argv as a normal user: as is when
// the test is not root, else as nobody through setpriv, with a clean
// environment (HOME=home, PATH, plus env).
func unprivileged(t *testing.T, home string, env []string, argv ...string) *exec.Cmd {
	t.Helper()
	base := append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0"}, env...)
	if os.Getuid() != 0 {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = base
		return c
	}
	setpriv := requireTool(t, "setpriv")
	args := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", "env", "-i"}, base...)
	return exec.Command(setpriv, append(args, argv...)...)
}

// userDir creates a directory the unprivileged user owns; the built
// programs' directory is made reachable for it.
func userDir(t *testing.T, ours string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dmu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Getuid() == 0 {
		os.Chmod(filepath.Dir(ours), 0o755)
		if err := os.Chown(dir, nobodyUID, nobodyUID); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// chownTree gives a prepared tree to the unprivileged user.
func chownTree(t *testing.T, root string) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, nobodyUID, nobodyUID)
		}
		return err
	})
}

// TestUnitsAsNormalUser runs both packaged units' ExecStart= command lines
// under systemd-socket-activate as a normal user: the per-user unit uses
// ~/.gnupg (GnuPG 2.2's homedir, not the system layout), the system unit
// (--system) the system layout, here below DIRMNGR_SYSTEM_PREFIX.
func TestUnitsAsNormalUser(t *testing.T) {
	activate := requireTool(t, "systemd-socket-activate")
	ours := bin(t, "dirmngr")
	for _, tc := range []struct {
		unit   string
		system bool
	}{{"dirmngr-go.service", false}, {"dirmngr-go-system.service", true}} {
		t.Run(tc.unit, func(t *testing.T) {
			argv := unitExecStart(t, tc.unit)
			if argv[0] != "/usr/bin/dirmngr-go" {
				t.Fatalf("ExecStart runs %s", argv[0])
			}
			argv[0] = ours
			home := userDir(t, ours)
			confDir := filepath.Join(home, ".gnupg")
			cacheDB := filepath.Join(confDir, "crls.d", "crls.db")
			var env []string
			if tc.system {
				confDir = filepath.Join(home, "etc", "dirmngr")
				cacheDB = filepath.Join(home, "var", "cache", "dirmngr", "crls.d", "crls.db")
				env = append(env, "DIRMNGR_SYSTEM_PREFIX="+home)
			}
			os.MkdirAll(confDir, 0o700)
			os.WriteFile(filepath.Join(confDir, "dirmngr.conf"), []byte("ldapserver ldap.example.org:389:::dc=unit,dc=test\n"), 0o600)
			if tc.system {
				os.MkdirAll(filepath.Join(home, "var", "cache", "dirmngr"), 0o755)
			}
			chownTree(t, home)
			sock := filepath.Join(home, "S.unit")
			sa := []string{activate, "-l", sock}
			for _, e := range env {
				sa = append(sa, "-E", e)
			}
			cmd := unprivileged(t, home, env, append(sa, argv...)...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }, "activation socket")
			defer func() {
				if t.Failed() {
					t.Logf("daemon stderr: %s", stderr.String())
				}
			}()
			out := gcaSocket(t, sock, "LDAPSERVER", "GETINFO pid", "/bye")
			if !strings.Contains(out, "S LDAPSERVER ldap:ldap.example.org:389:::dc=unit,dc=test") {
				t.Errorf("%s did not read %s/dirmngr.conf: %q\nstderr: %s", tc.unit, confDir, out, stderr.String())
			}
			if _, err := os.Stat(cacheDB); err != nil {
				t.Errorf("cache not at %s: %v\nstderr: %s", cacheDB, err, stderr.String())
			}
			gcaSocket(t, sock, "KILLDIRMNGR", "/bye")
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("daemon did not exit after KILLDIRMNGR")
			}
		})
	}
}

// TestDaemonAsNormalUser: the man page's `dirmngr --daemon`, run by a
// normal user without --homedir or $GNUPGHOME, serves ~/.gnupg on GnuPG's
// socket (in the homedir when /run/user/<uid> does not exist).
func TestDaemonAsNormalUser(t *testing.T) {
	ours := bin(t, "dirmngr")
	home := userDir(t, ours)
	if os.Getuid() != 0 {
		if _, err := os.Stat("/run/user/" + strconv.Itoa(os.Getuid())); err == nil {
			t.Skip("this user has /run/user/<uid>: the socket would not be in the homedir")
		}
	}
	cmd := unprivileged(t, home, nil, ours, "--daemon", "--sh")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dirmngr --daemon as a normal user: %v\n%s", err, out)
	}
	sock := filepath.Join(home, ".gnupg", "S.dirmngr")
	if !strings.Contains(string(out), "DIRMNGR_INFO="+sock+":") {
		t.Fatalf("info line %q, want socket %s", out, sock)
	}
	pid, _ := strconv.Atoi(strings.Split(string(out), ":")[1])
	t.Cleanup(func() {
		if pid > 0 && alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if got := gcaSocket(t, sock, "GETINFO socket_name", "/bye"); !strings.Contains(got, "D "+sock) {
		t.Errorf("GETINFO socket_name: %q", got)
	}
	if _, err := os.Stat(filepath.Join(home, ".gnupg", "crls.d", "crls.db")); err != nil {
		t.Errorf("cache not in ~/.gnupg: %v", err)
	}
	gcaSocket(t, sock, "KILLDIRMNGR", "/bye")
	waitFor(t, 10*time.Second, func() bool { return !alive(pid) }, "daemon to exit")
}

// gcaSocket runs gpg-connect-agent on an explicit socket.
func gcaSocket(t *testing.T, sock string, lines ...string) string {
	t.Helper()
	tool := requireTool(t, "gpg-connect-agent")
	c := exec.Command(tool, append([]string{"-S", sock}, lines...)...)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("gpg-connect-agent -S %s: %v\n%s", sock, err, out)
	}
	return string(out)
}
