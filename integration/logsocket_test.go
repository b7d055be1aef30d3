package integration

import (
	"bufio"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogFileSocket: with "log-file socket://PATH" (GnuPG's watchgnupg
// setup) the daemon starts and streams its log to the listening socket, as
// GnuPG's dirmngr does with the same option.
func TestLogFileSocket(t *testing.T) {
	ours := bin(t, "dirmngr")
	gnupgs := requireTool(t, "dirmngr")
	for _, tc := range []struct{ name, program string }{{"ours", ours}, {"GnuPG", gnupgs}} {
		t.Run(tc.name, func(t *testing.T) {
			home := newHome(t)
			path := filepath.Join(home, "S.log")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			lines := make(chan string, 64)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						sc := bufio.NewScanner(c)
						for sc.Scan() {
							lines <- sc.Text()
						}
					}()
				}
			}()
			cmd := exec.Command(tc.program, "--homedir", home, "--daemon", "--sh", "--log-file", "socket://"+path, "-v")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s --daemon --log-file socket://: %v\n%s", tc.name, err, out)
			}
			gca(t, home, "GETINFO version")
			deadline := time.After(10 * time.Second)
			for {
				select {
				case l := <-lines:
					if strings.Contains(l, "dirmngr[") && strings.Contains(l, "listening on socket") {
						gca(t, home, "KILLDIRMNGR")
						return
					}
				case <-deadline:
					t.Fatal("no 'listening on socket' line arrived on the log socket")
				}
			}
		})
	}
}
