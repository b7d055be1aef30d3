package integration

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// protocolScript exercises the built-ins and the commands of the daemon
// core whose replies do not depend on the implementation (no pids, paths
// or help texts beyond the synopsis lines).
var protocolScript = []string{
	"NOP",
	"nop ignored args",
	"HELP",
	"HELP NOSUCHCMD",
	"FOOBAR",
	"INPUT FD=3",
	"OUTPUT FD=4",
	"QUIT",
	"OPTION",
	"OPTION foo=bar",
	"OPTION force-crl-refresh=1",
	"OPTION audit-events=1",
	"OPTION -x",
	"OPTION --http-proxy = none",
	"OPTION http-crl=1",
	"OPTION honor-keyserver-url-used",
	"OPTION =x",
	"OPTION http-crl=",
	"AUTH",
	"CANCEL",
	"END",
	"D stray data",
	"GETINFO version",
	"GETINFO tor",
	"GETINFO workqueue",
	"GETINFO getenv NO_SUCH_VAR_FOR_DIRMNGR_TEST",
	"GETINFO getenv",
	"GETINFO foo",
	"GETINFO",
	"GETINFO versionx",
	"LDAPSERVER",
	"LDAPSERVER ldap.example.org:389:::dc=example,dc=org",
	"LDAPSERVER ldap:h2:636:cn=u:secret:o=x:ldaptls,ntds",
	"LDAPSERVER h3",
	"LDAPSERVER",
	"RESET",
	"LDAPSERVER",
	"LDAPSERVER ldap.example.org:389:::dc=example,dc=org",
	"LDAPSERVER --clear",
	"LDAPSERVER",
	"LDAPSERVER --clear h4:1",
	"LDAPSERVER",
}

// TestProtocolMatchesGnuPG runs the same gpg-connect-agent session against
// GnuPG's dirmngr and ours and requires identical replies.
func TestProtocolMatchesGnuPG(t *testing.T) {
	gnupg := requireTool(t, "dirmngr")
	requireTool(t, "gpg-connect-agent")
	homeG, homeO := newHome(t), newHome(t)
	startDaemon(t, gnupg, homeG)
	startDaemon(t, bin(t, "dirmngr"), homeO)
	want := gca(t, homeG, append(protocolScript, "KILLDIRMNGR")...)
	got := gca(t, homeO, append(protocolScript, "KILLDIRMNGR")...)
	if got != want {
		t.Errorf("replies differ from GnuPG's dirmngr:\n%s", diff(want, got))
	}
	golden(t, "protocol-session", got)
}

// TestGetInfoDynamic checks the replies that depend on the process.
func TestGetInfoDynamic(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	out := gca(t, home, "GETINFO pid", "GETINFO socket_name", "GETINFO session_id", "GETINFO getenv GNUPGHOME", "GETINFO stats", "GETINFO dnsinfo")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"D " + strconv.Itoa(pid), "OK", "D " + filepath.Join(home, "S.dirmngr"), "OK"}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("line %d: got %q, want %q (all: %q)", i, lines[i], w, lines)
		}
	}
	if !regexp.MustCompile(`^D \d+$`).MatchString(lines[4]) {
		t.Errorf("session_id: %q", lines[4])
	}
	if !strings.Contains(out, "D "+home+"\nOK\n") {
		t.Errorf("getenv GNUPGHOME missing in %q", out)
	}
	if !strings.Contains(out, "sessions_active 1%0A") || !strings.Contains(out, "OK - Forced use of System resolver") {
		t.Errorf("stats/dnsinfo: %q", out)
	}
	// Session ids grow per connection.
	first, _ := strconv.Atoi(strings.TrimPrefix(lines[4], "D "))
	again := strings.Split(gca(t, home, "GETINFO session_id"), "\n")[0]
	if next, _ := strconv.Atoi(strings.TrimPrefix(again, "D ")); next <= first {
		t.Errorf("session id did not grow: %d then %d", first, next)
	}
}

// TestServerModePipes drives `dirmngr --server` over stdin/stdout.
func TestServerModePipes(t *testing.T) {
	home := newHome(t)
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("# empty\n"), 0o600)
	cmd := exec.Command(bin(t, "dirmngr"), "--homedir", home, "--server")
	cmd.Stdin = strings.NewReader("GETINFO session_id\nGETINFO socket_name\nGETINFO version\nBYE\nNOP\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dirmngr --server: %v", err)
	}
	want := "# Home: " + home + "\n# Config: " + home + "/dirmngr.conf\nOK Dirmngr 2.2.40 at your service\n" +
		"D 0\nOK\nD " + home + "/S.dirmngr\nOK\nD 2.2.40\nOK\nOK closing connection\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

// dial opens a raw Assuan connection and reads the greeting.
func dial(t testing.TB, home string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(home, "S.dirmngr"))
	if err != nil {
		t.Fatal(err)
	}
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

// roundTrip sends a command and returns the reply lines up to OK/ERR.
func roundTrip(t testing.TB, c net.Conn, r *bufio.Reader, cmd string) []string {
	t.Helper()
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatalf("write %q: %v", cmd, err)
	}
	var lines []string
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply to %q: %v (so far %q)", cmd, err, lines)
		}
		line = strings.TrimSuffix(line, "\n")
		lines = append(lines, line)
		if strings.HasPrefix(line, "OK") || strings.HasPrefix(line, "ERR") {
			return lines
		}
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	home := newHome(t)
	startDaemon(t, bin(t, "dirmngr"), home)
	cmd := exec.Command(bin(t, "dirmngr"), "--homedir", home, "--daemon")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second daemon started: %s", out)
	}
	if !strings.Contains(string(out), "already running") {
		t.Errorf("unclear error: %s", out)
	}
	if got := gca(t, home, "GETINFO version"); got != "D 2.2.40\nOK\n" {
		t.Errorf("first daemon no longer serves: %q", got)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	home := newHome(t)
	path := filepath.Join(home, "S.dirmngr")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // leaves a stale socket file behind
	startDaemon(t, bin(t, "dirmngr"), home)
	if got := gca(t, home, "NOP"); got != "OK\n" {
		t.Errorf("got %q", got)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket mode: %v %v", st.Mode(), err)
	}
}

func waitExit(t testing.TB, pid int, what string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool { return !alive(pid) }, what)
}

func TestKillDirmngr(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	if got := gca(t, home, "KILLDIRMNGR"); got != "OK closing connection\n" {
		t.Errorf("KILLDIRMNGR: %q", got)
	}
	waitExit(t, pid, "exit after KILLDIRMNGR")
	if _, err := os.Stat(filepath.Join(home, "S.dirmngr")); !os.IsNotExist(err) {
		t.Errorf("socket not removed: %v", err)
	}
}

func TestSocketRemovalStopsDaemon(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	os.Remove(filepath.Join(home, "S.dirmngr"))
	waitExit(t, pid, "exit after socket removal")
}

func TestSIGHUPReloads(t *testing.T) {
	home := newHome(t)
	conf := filepath.Join(home, "dirmngr.conf")
	os.WriteFile(conf, []byte("max-replies 5\n"), 0o600)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	if got := gca(t, home, "LDAPSERVER"); got != "OK\n" {
		t.Fatalf("before reload: %q", got)
	}
	os.WriteFile(conf, []byte("ldapserver ldap.example.net:3389:::o=reloaded\n"), 0o600)
	syscall.Kill(pid, syscall.SIGHUP)
	want := "S LDAPSERVER ldap:ldap.example.net:3389:::o=reloaded:none:\nOK\n"
	waitFor(t, 5*time.Second, func() bool { return gca(t, home, "LDAPSERVER") == want }, "reloaded option")
	// RELOADDIRMNGR does the same.
	os.WriteFile(conf, []byte("\n"), 0o600)
	if got := gca(t, home, "RELOADDIRMNGR", "LDAPSERVER"); got != "OK\nOK\n" {
		t.Errorf("after RELOADDIRMNGR: %q", got)
	}
	// A broken configuration keeps the previous one.
	os.WriteFile(conf, []byte("max-replies lots\n"), 0o600)
	if got := gca(t, home, "RELOADDIRMNGR", "NOP"); !strings.HasPrefix(got, "ERR 167772275 Configuration error <Dirmngr>") || !strings.Contains(got, "max-replies") || !strings.HasSuffix(got, "\nOK\n") {
		t.Errorf("reload of a bad file: %q, want Configuration error naming the option, then OK for NOP", got)
	}
}

func TestSIGTERMDrains(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	c, r := dial(t, home)
	defer c.Close()
	syscall.Kill(pid, syscall.SIGTERM)
	waitFor(t, 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(home, "S.dirmngr"))
		return os.IsNotExist(err)
	}, "socket removal after SIGTERM")
	if got := roundTrip(t, c, r, "GETINFO version"); strings.Join(got, "|") != "D 2.2.40|OK" {
		t.Fatalf("open session stopped working: %q", got)
	}
	syscall.Kill(pid, syscall.SIGTERM) // the second one only logs
	time.Sleep(200 * time.Millisecond)
	if got := roundTrip(t, c, r, "NOP"); got[0] != "OK" {
		t.Fatalf("after 2nd TERM: %q", got)
	}
	if !alive(pid) {
		t.Fatal("daemon exited with a session open")
	}
	roundTrip(t, c, r, "BYE")
	waitExit(t, pid, "exit after the last session ended")
}

func TestThirdSIGTERMForces(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	c, _ := dial(t, home)
	defer c.Close()
	for i := 0; i < 3; i++ {
		syscall.Kill(pid, syscall.SIGTERM)
		time.Sleep(100 * time.Millisecond)
	}
	waitExit(t, pid, "forced exit after the 3rd SIGTERM")
}

func TestSIGINTExitsImmediately(t *testing.T) {
	home := newHome(t)
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	c, _ := dial(t, home)
	defer c.Close()
	syscall.Kill(pid, syscall.SIGINT)
	waitExit(t, pid, "exit after SIGINT")
	if _, err := os.Stat(filepath.Join(home, "S.dirmngr")); !os.IsNotExist(err) {
		t.Errorf("socket not removed: %v", err)
	}
}

func TestOverlongLineDropsOnlyThatSession(t *testing.T) {
	home := newHome(t)
	startDaemon(t, bin(t, "dirmngr"), home)
	other, or := dial(t, home)
	defer other.Close()
	c, r := dial(t, home)
	defer c.Close()
	if got := roundTrip(t, c, r, "NOP "+strings.Repeat("x", 1001-4)); got[0] != "OK" {
		t.Fatalf("1001-byte line: %q", got)
	}
	c.Write([]byte("NOP " + strings.Repeat("x", 1002-4) + "\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("1002-byte line answered with %q; want the connection dropped", line)
	}
	// Binary garbage on another connection gets errors, not a crash.
	g, gr := dial(t, home)
	defer g.Close()
	g.Write([]byte("\x00\xff\x01garbage\r\n"))
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := gr.ReadString('\n'); err != nil || !strings.HasPrefix(line, "ERR 167772435") {
		t.Errorf("garbage: %q %v", line, err)
	}
	if got := roundTrip(t, other, or, "GETINFO version"); got[0] != "D 2.2.40" {
		t.Errorf("other session affected: %q", got)
	}
}
