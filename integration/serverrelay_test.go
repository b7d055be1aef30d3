package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runServer runs `dirmngr --server` on home with the given input lines.
func runServer(t *testing.T, prog, home string, input string, args ...string) progResult {
	t.Helper()
	cmd := exec.Command(prog, append([]string{"--homedir", home, "--server"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	cmd.Stdin = strings.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return progResult{code, out.String(), errOut.String()}
}

// TestServerBesideDaemon: `dirmngr --server` on the homedir of a running
// daemon serves its session (relayed to the daemon, which holds the CRL
// cache), as GnuPG allows both; with the cache busy and no daemon to relay
// to, the reason is on stderr even when a log file is set.
func TestServerBesideDaemon(t *testing.T) {
	ours := bin(t, "dirmngr")
	gnupgs := requireTool(t, "dirmngr")
	input := "GETINFO version\nLISTCRLS\nBYE\n"
	var outs []string
	for _, tc := range []struct{ name, prog string }{{"ours", ours}, {"GnuPG", gnupgs}} {
		home := newHome(t)
		startDaemon(t, tc.prog, home)
		res := runServer(t, tc.prog, home, input, "--log-file", filepath.Join(home, "server.log"))
		if res.code != 0 || !strings.Contains(res.out, "OK Dirmngr 2.2.40 at your service\nD 2.2.40\nOK\n") || !strings.HasSuffix(res.out, "OK closing connection\n") || res.errOut != "" {
			t.Fatalf("%s: --server beside the daemon: exit %d\nstdout %q\nstderr %q", tc.name, res.code, res.out, res.errOut)
		}
		if out := gca(t, home, "GETINFO version"); !strings.Contains(out, "D 2.2.40") {
			t.Errorf("%s: daemon after the --server session: %q", tc.name, out)
		}
		outs = append(outs, strings.ReplaceAll(res.out, home, "HOME"))
	}
	if outs[0] != outs[1] {
		t.Errorf("--server beside a daemon: ours %q, GnuPG %q", outs[0], outs[1])
	}
	// The cache busy, nobody on the homedir's socket: said on stderr.
	home := newHome(t)
	other := filepath.Join(newHome(t), "S.other")
	cmd := exec.Command(ours, "--homedir", home, "--daemon", "--sh", "--socket-name", other)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("daemon on another socket: %v\n%s", err, out)
	}
	defer gcaSocket(t, other, "KILLDIRMNGR", "/bye")
	res := runServer(t, ours, home, input, "--log-file", filepath.Join(home, "server.log"))
	if res.code != 2 || !strings.Contains(res.errOut, "is in use by another process") || !strings.Contains(res.errOut, filepath.Join(home, "S.dirmngr")) {
		t.Errorf("busy cache: exit %d, stderr %q", res.code, res.errOut)
	}
}
