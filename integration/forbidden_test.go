package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// When DIRMNGR_TEST_CLIENT_SOCKET is set, the test binary acts as a tiny
// Assuan client (used to talk to the daemon as another user).
func init() {
	path := os.Getenv("DIRMNGR_TEST_CLIENT_SOCKET")
	if path == "" {
		return
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("DIAL", err)
		os.Exit(3)
	}
	r := bufio.NewReader(c)
	for _, cmd := range append([]string{""}, strings.Split(os.Getenv("DIRMNGR_TEST_CLIENT_CMDS"), ";")...) {
		if cmd != "" {
			fmt.Fprintf(c, "%s\n", cmd)
		}
		for {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				fmt.Println("READ", err)
				os.Exit(3)
			}
			if strings.HasPrefix(line, "#") {
				continue
			}
			if cmd != "" {
				fmt.Print(line)
			}
			if strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "ERR") {
				break
			}
		}
	}
	os.Exit(0)
}

// Control commands are refused to a peer with another uid; queries work.
func TestControlCommandsForbiddenToOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root to act as another user")
		}
		t.Skip("needs root")
	}
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	sock := filepath.Join(home, "S.dirmngr")
	// Open the way for another user (the daemon creates both 0700).
	os.Chmod(home, 0o755)
	os.Chmod(sock, 0o777)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary lives in a private directory: copy it where nobody can run it.
	dir, err := os.MkdirTemp("", "dmclient")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	exe := filepath.Join(dir, "client")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = []string{"DIRMNGR_TEST_CLIENT_SOCKET=" + sock,
		"DIRMNGR_TEST_CLIENT_CMDS=GETINFO version;KILLDIRMNGR;RELOADDIRMNGR;FLUSHCRLS;NOP"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v: %s", err, out)
	}
	want := "D 2.2.40\nOK\n" + strings.Repeat("ERR 167772411 Forbidden <Dirmngr>\n", 3) + "OK\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if !alive(pid) {
		t.Fatal("daemon was killed by another user")
	}
}
