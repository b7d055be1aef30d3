package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// normalize joins consecutive D lines (their chunking is an implementation
// detail clients must not rely on) and drops progress status lines.
func normalize(out string) string {
	var b strings.Builder
	var data []byte
	flush := func() {
		if data != nil {
			b.WriteString("D " + string(data) + "\n")
			data = nil
		}
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "D "):
			data = append(data, assuan.UnescapeData([]byte(line[2:]))...)
			if data == nil {
				data = []byte{}
			}
		case strings.HasPrefix(line, "S PROGRESS"):
		default:
			flush()
			if line != "" {
				b.WriteString(line + "\n")
			}
		}
	}
	flush()
	return b.String()
}

func certID(t *testing.T, c *testpki.Cert) string {
	id, err := certid.Of(c.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestCRLCommandsMatchGnuPG runs one gpg-connect-agent script against
// GnuPG's dirmngr and ours and requires identical replies: LOADCRL from a
// file and a URL, LISTCRLS, ISVALID with ISTRUSTED, CACHECERT, LOOKUP,
// VALIDATE, error cases, FLUSHCRLS.
func TestCRLCommandsMatchGnuPG(t *testing.T) {
	ours := bin(t, "dirmngr")
	theirs := requireTool(t, "dirmngr")
	l := newLab(t)
	files := t.TempDir()
	rootDER := testpki.WriteFile(files, "root.der", l.root.DER())
	aliceDER := testpki.WriteFile(files, "alice.der", l.alice.DER())
	trusted := testpki.WriteFile(files, "trusted", []byte("1"))
	l.mu.Lock()
	crlData := l.srv["/root.crl"]
	l.mu.Unlock()
	crlFile := testpki.WriteFile(files, "root.crl", crlData)
	script := []string{
		"/definqfile SENDCERT_SKI " + rootDER,
		"/definqfile SENDCERT " + rootDER,
		"/definqfile ISTRUSTED " + trusted,
		"/definqfile TARGETCERT " + aliceDER,
		"LISTCRLS",
		"LOADCRL " + crlFile,
		"LISTCRLS",
		"ISVALID " + certID(t, l.alice),
		"ISVALID " + certID(t, l.bob),
		"ISVALID " + strings.TrimSuffix(certID(t, l.bob), "1") + "01", // other serial encoding
		"CACHECERT",
		"CACHECERT",
		"LOOKUP --cache-only 0x" + l.alice.Fingerprint(),
		"LOOKUP --cache-only alice@example.org",
		"LOOKUP --single --cache-only 0xDEADBEEFDEADBEEFDEADBEEFDEADBEEFDEADBEEF",
		"LOOKUP --url --cache-only http://127.0.0.1:1/x",
		"LOOKUP --url --single http://127.0.0.1:1/x",
		"VALIDATE",
		"LOADCRL /no/such/file.crl",
		"LOADCRL --url " + l.base + "/nosuch.crl",
		"LOADCRL --url " + l.base + "/root.crl",
		"CHECKCRL",
		"FLUSHCRLS",
		"LISTCRLS",
	}
	var outs [2]string
	var trustAsks [2]int
	for i, prog := range []string{ours, theirs} {
		home := newHome(t)
		startDaemon(t, prog, home)
		// GnuPG asks ISTRUSTED on every lookup; we remember the answer for
		// the session. Compare everything else.
		for _, line := range strings.Split(normalize(gca(t, home, script...)), "\n") {
			if strings.HasPrefix(line, "INQUIRE ISTRUSTED ") {
				trustAsks[i]++
				continue
			}
			outs[i] += line + "\n"
		}
		gca(t, home, "KILLDIRMNGR")
	}
	if trustAsks[0] != 1 || trustAsks[1] < 2 {
		t.Errorf("ISTRUSTED inquiries: ours %d (want 1 per session), GnuPG %d", trustAsks[0], trustAsks[1])
	}
	if outs[0] != outs[1] {
		t.Errorf("replies differ from GnuPG's:\n%s\n--- ours\n%s", diff(outs[1], outs[0]), outs[0])
	}
	for _, want := range []string{"Begin CRL dump", "ERR 167772254 Certificate revoked", "ERR 167772317 Duplicated value", "ERR 167805009 No such file or directory", "ERR 167772218 No data"} {
		if !strings.Contains(outs[0], want) {
			t.Errorf("missing %q in\n%s", want, outs[0])
		}
	}
}

// TestOneShotCommands drives --load-crl, --list-crls and --flush on a cache
// with no daemon running, and again through a running daemon that holds
// the cache.
func TestOneShotCommands(t *testing.T) {
	ours := bin(t, "dirmngr")
	l := newLab(t)
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", l.root.DER())
	l.mu.Lock()
	crlFile := testpki.WriteFile(home, "root.crl", l.srv["/root.crl"])
	old := testpki.WriteFile(home, "old.crl", l.srv["/old/root.crl"])
	l.mu.Unlock()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(ours, append([]string{"--homedir", home}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return string(out), code
	}
	check := func(out string, code, wantCode int, want string) {
		t.Helper()
		if code != wantCode || !strings.Contains(out, want) {
			t.Errorf("exit %d (want %d), output %q lacks %q", code, wantCode, out, want)
		}
	}
	out, code := run("--load-crl", crlFile)
	check(out, code, 0, "")
	out, code = run("--list-crls")
	check(out, code, 0, "Trust Check:\t[system]")
	check(out, code, 0, " reasons( key_compromise ) rdate: ")
	// A CRL that fails to load exits 1, as GnuPG's dirmngr does.
	out, code = run("--load-crl", "/no/such.crl")
	check(out, code, 1, "No such file or directory")
	out, code = run("--load-crl", old)
	check(out, code, 1, "CRL too old")
	// The rejected old CRL did not replace the good one.
	out, _ = run("--list-crls")
	check(out, 0, 0, "Next Update:")
	if strings.Contains(out, "ERROR:") {
		t.Errorf("old CRL replaced the valid one:\n%s", out)
	}
	out, code = run("--load-crl", "--force", old)
	check(out, code, 1, "CRL is older than the cached one")
	// --faked-system-time moves the clock: three days ahead the CRL is too old.
	out, code = run("--faked-system-time", strconv.FormatInt(time.Now().Add(72*time.Hour).Unix(), 10), "--load-crl", crlFile)
	check(out, code, 1, "CRL too old")

	// With a daemon holding the cache the commands go through it.
	startDaemon(t, ours, home)
	out, code = run("--list-crls")
	check(out, code, 0, "Begin CRL dump")
	out, code = run("--flush")
	check(out, code, 0, "")
	out, code = run("--list-crls")
	check(out, code, 0, "")
	if strings.Contains(out, "Begin CRL dump") {
		t.Errorf("flush through the daemon left CRLs:\n%s", out)
	}
	out, code = run("--fetch-crl", l.base+"/root.crl")
	check(out, code, 0, "")
	out, _ = run("--list-crls")
	check(out, 0, 0, "retrieved via "+l.base+"/root.crl")
	gca(t, home, "KILLDIRMNGR")
}
