package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestVerboseLog: at -v the log has each check's result as GnuPG's
// cache_isvalid logs it (serial, issuer, verdict, reason), each CRL fetch
// (URL, bytes, entries, time), failed commands by name; a client that goes
// away does not leave "broken pipe"; GETINFO stats does not count a
// revoked answer as an error and reports the time busy, as does the
// SIGUSR1 log line; the stop line names our version.
func TestVerboseLog(t *testing.T) {
	daemon := bin(t, "dirmngr")
	gnupgClient := requireTool(t, "dirmngr-client")
	l := newLab(t)
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", l.root.DER())
	logf := filepath.Join(home, "dirmngr.log")
	pid := startDaemon(t, daemon, home, "-v", "--log-file", logf)
	// GnuPG's client closes its end before reading the last reply.
	for _, c := range []*testpki.Cert{l.alice, l.bob} {
		runClientProg(t, gnupgClient, home, c.DER())
	}
	stats := gca(t, home, "ISVALID "+certID(t, l.bob), "LOADCRL /no/such.crl", "GETINFO stats")
	if !strings.Contains(stats, " Certificate revoked <Dirmngr>") {
		t.Errorf("ISVALID of a revoked certificate: %q", stats)
	}
	// The failed LOADCRL is the only error; the revoked answers are not.
	if !strings.Contains(stats, "errors 1%0A") && !strings.Contains(stats, "errors 1\n") {
		t.Errorf("GETINFO stats: %q", stats)
	}
	// The time spent answering: the checks above fetched a CRL.
	if m := regexp.MustCompile(`busy_us (\d+)`).FindStringSubmatch(stats); m == nil || m[1] == "0" {
		t.Errorf("GETINFO stats without the time busy: %q", stats)
	}
	syscall.Kill(pid, syscall.SIGUSR1)
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(logf)
		return strings.Contains(string(b), "statistics:")
	}, "the statistics in the log after SIGUSR1")
	gca(t, home, "KILLDIRMNGR")
	waitExit(t, pid, "exit after KILLDIRMNGR")
	data, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	log := string(data)
	issuer := regexp.QuoteMeta(`issuer="CN=Test Root CA,O=Dirmngr Research,C=DE"`)
	for _, re := range []string{
		`S/N 1000 is valid, it is not listed in the CRL ` + issuer,
		`S/N 1001 is not valid; reason=key_compromise date=\d{8}T\d{6} ` + issuer,
		`command 'CHECKCRL' failed: Certificate revoked`,
		`command 'LOADCRL' failed: No such file or directory session=\d+ cause="open /no/such.crl"`,
		`command 'ISVALID' failed: Certificate revoked`,
		`CRL fetched url=` + regexp.QuoteMeta(l.base+"/root.crl") + ` bytes=\d+ entries=1 time=\S+`,
		`dirmngr \(Go\) 0\.1\.0 stopped`,
		`statistics: uptime \S+, active sessions \d+, sessions \d+, requests \d+, errors 1, busy [1-9]\S*`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("log lacks %q:\n%s", re, log)
		}
	}
	if strings.Contains(log, "broken pipe") {
		t.Errorf("log reports a client that went away:\n%s", log)
	}
}
