package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestSystemMode: `dirmngr --daemon --system` uses
// the system layout (configuration in /etc/dirmngr, cache in
// /var/cache/dirmngr/crls.d, socket /run/dirmngr/socket), here below a
// DIRMNGR_SYSTEM_PREFIX.
func TestSystemMode(t *testing.T) {
	ours := bin(t, "dirmngr")
	gcaTool := requireTool(t, "gpg-connect-agent")
	prefix, err := os.MkdirTemp("/tmp", "dmsys")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(prefix)
	l := newLab(t)
	conf := filepath.Join(prefix, "etc", "dirmngr")
	os.MkdirAll(filepath.Join(conf, "trusted-certs"), 0o755)
	testpki.WriteFile(filepath.Join(conf, "trusted-certs"), "root.crt", l.root.DER())
	os.WriteFile(filepath.Join(conf, "dirmngr.conf"), []byte("ldapserver ldap.example.org:389:::dc=example,dc=org\n"), 0o644)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GNUPGHOME=") {
			env = append(env, e)
		}
	}
	env = append(env, "DIRMNGR_SYSTEM_PREFIX="+prefix)
	cmd := exec.Command(ours, "--daemon", "--system", "--sh")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dirmngr --daemon: %v", err)
	}
	sock := filepath.Join(prefix, "run", "dirmngr", "socket")
	if !strings.Contains(string(out), "DIRMNGR_INFO="+sock+":") {
		t.Fatalf("info line %q, want socket %s", out, sock)
	}
	pid, _ := strconv.Atoi(strings.Split(strings.Split(string(out), ":")[1], ":")[0])
	defer func() {
		if pid > 0 && alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("system socket: %v %v", fi, err)
	}
	run := func(lines ...string) string {
		c := exec.Command(gcaTool, append([]string{"-S", sock}, lines...)...)
		c.Env = env
		o, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("gpg-connect-agent: %v\n%s", err, o)
		}
		return string(o)
	}
	l.mu.Lock()
	crlFile := testpki.WriteFile(prefix, "root.crl", l.srv["/root.crl"])
	l.mu.Unlock()
	got := run("GETINFO socket_name", "LDAPSERVER", "LOADCRL "+crlFile, "LISTCRLS", "/bye")
	for _, want := range []string{"D " + sock, "S LDAPSERVER ldap:ldap.example.org:389:::dc=example,dc=org", "Trust Check:\t[system]"} {
		if !strings.Contains(strings.ReplaceAll(got, "%09", "\t"), want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if _, err := os.Stat(filepath.Join(prefix, "var", "cache", "dirmngr", "crls.d", "crls.db")); err != nil {
		t.Errorf("system cache: %v", err)
	}
	run("KILLDIRMNGR", "/bye")
}
