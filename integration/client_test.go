package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

type clientResult struct {
	out  string
	code int
}

func runClientProg(t *testing.T, prog, home string, stdin []byte, args ...string) clientResult {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C", "LANGUAGE=")
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return clientResult{string(out), code}
}

// TestDirmngrClients drives our daemon with GnuPG's dirmngr-client and with
// ours; both must get the same exit codes for every operation.
func TestDirmngrClients(t *testing.T) {
	daemon := bin(t, "dirmngr")
	ourClient := bin(t, "dirmngr-client")
	gnupgClient := requireTool(t, "dirmngr-client")
	l := newLab(t)
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", l.root.DER())
	l.mu.Lock()
	crlFile := testpki.WriteFile(home, "root.crl", l.srv["/root.crl"])
	l.mu.Unlock()
	startDaemon(t, daemon, home)

	type step struct {
		name  string
		stdin []byte
		args  []string
		code  int
		want  string // in our client's output
	}
	rel, err := filepath.Rel(mustGetwd(t), crlFile)
	if err != nil {
		t.Fatal(err)
	}
	steps := []step{
		{"ping", nil, []string{"-v", "--ping"}, 0, "a dirmngr daemon is up and running"},
		{"check-404", l.dan.DER(), []string{"-v"}, 2, "certificate check failed: No data"},
		{"check-valid", l.alice.DER(), []string{"-v"}, 0, "certificate is valid"},
		{"check-revoked", l.bob.DER(), []string{"-v"}, 1, "certificate has been revoked"},
		{"check-garbage", []byte("garbage"), []string{"-v"}, 2, "no certificate or invalid encoded"},
		{"load-crl-relative", nil, []string{"-v", "--load-crl", rel}, 0, "response of dirmngr: okay"},
		{"load-crl-url", nil, []string{"-v", "--load-crl", "--url", l.base + "/root.crl"}, 0, "response of dirmngr: okay"},
		{"cache-cert", l.inter.DER(), []string{"-v", "--cache-cert"}, 0, ""},
		{"cache-cert-again", l.inter.DER(), []string{"-v", "--cache-cert"}, 0, "certificate already cached"},
		{"validate", l.alice.DER(), []string{"-v", "--validate"}, 0, "certificate is valid"},
		{"ocsp-not-enabled", l.alice.DER(), []string{"-v", "--ocsp"}, 2, "Not supported"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			ours := runClientProg(t, ourClient, home, st.stdin, st.args...)
			theirs := runClientProg(t, gnupgClient, home, st.stdin, st.args...)
			if ours.code != st.code || !strings.Contains(ours.out, st.want) {
				t.Errorf("ours: exit %d (want %d), output %q lacks %q", ours.code, st.code, ours.out, st.want)
			}
			if theirs.code != st.code {
				t.Errorf("GnuPG's dirmngr-client: exit %d (want %d): %s", theirs.code, st.code, theirs.out)
			}
		})
	}
	// Lookup in the cache prints base64 DER, 64 columns, like GnuPG's.
	ours := runClientProg(t, ourClient, home, nil, "--lookup", "--local", "0x"+l.inter.Fingerprint())
	theirs := runClientProg(t, gnupgClient, home, nil, "--lookup", "--local", "0x"+l.inter.Fingerprint())
	if ours.code != 0 || theirs.code != 0 || ours.out != theirs.out || !strings.HasPrefix(ours.out, "MII") {
		t.Errorf("lookup: ours %d %q, GnuPG %d %q", ours.code, ours.out, theirs.code, theirs.out)
	}

	// Squid mode: one escaped PEM per line, one answer per line, in order.
	line := func(c *testpki.Cert) string {
		return strings.ReplaceAll(strings.TrimSpace(string(c.PEM())), "\n", "%0A")
	}
	input := strings.Join([]string{line(l.alice), line(l.bob), "garbage", line(l.erin), line(l.alice)}, "\n") + "\n"
	res := runClientProg(t, ourClient, home, []byte(input), "--squid-mode")
	if res.code != 0 || res.out != "OK\nERROR\nERROR\nOK\nOK\n" {
		t.Errorf("squid mode: exit %d, output %q", res.code, res.out)
	}
}

// TestSquidModeUntrustedRoot: with a root the daemon must confirm through
// ISTRUSTED (not in trusted-certs) and no gpg-agent to confirm it, every
// answer is ERROR and the replies stay in step with the requests (GnuPG's
// client desynchronises here).
func TestSquidModeUntrustedRoot(t *testing.T) {
	daemon := bin(t, "dirmngr")
	ourClient := bin(t, "dirmngr-client")
	l := newLab(t)
	home := newHome(t)
	startDaemon(t, daemon, home)
	line := func(c *testpki.Cert) string {
		return strings.ReplaceAll(strings.TrimSpace(string(c.PEM())), "\n", "%0A")
	}
	input := strings.Join([]string{line(l.alice), line(l.bob), line(l.alice)}, "\n") + "\n"
	res := runClientProg(t, ourClient, home, []byte(input), "--squid-mode")
	if res.code != 0 || res.out != "ERROR\nERROR\nERROR\n" {
		t.Errorf("squid mode: exit %d, output %q", res.code, res.out)
	}
	// The session is still in step: a ping works afterwards.
	if r := runClientProg(t, ourClient, home, nil, "--ping"); r.code != 0 {
		t.Errorf("ping after squid mode: %d %s", r.code, r.out)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
