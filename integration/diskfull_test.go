package integration

import (
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// fullDiskDaemon starts our daemon on home with its crls.d on a tmpfs of
// size bytes, mounted in a mount namespace of the daemon's own (unshare
// -m), so the test changes nothing outside it: the mount goes away with
// the daemon. It needs CAP_SYS_ADMIN; without it the test skips, or fails
// under CI=true.
func fullDiskDaemon(t *testing.T, home string, size string) int {
	t.Helper()
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare -m (needed for a small tmpfs): %v %s", err, out)
		}
		t.Skipf("no mount namespace here: %v %s", err, out)
	}
	cache := filepath.Join(home, "crls.d")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper := testpki.WriteFile(t.TempDir(), "dirmngr-on-tmpfs", []byte("#!/bin/sh\n"+
		"exec unshare -m --propagation private sh -c 'mount -t tmpfs -o size="+size+",mode=0700 tmpfs \""+cache+"\" && exec \"$0\" \"$@\"' "+bin(t, "dirmngr")+" \"$@\"\n"))
	os.Chmod(wrapper, 0o755)
	return startDaemon(t, wrapper, home)
}

// TestDiskFullKeepsOldCRL (threats-and-tests §4.I 56): the cache
// directory fills up while a large CRL is loaded. LOADCRL fails over
// Assuan with "No space left on device", the CRL cached before keeps
// answering exactly as before (same number, bob revoked, alice valid),
// and once the failed load's staged data is gone a small CRL loads again
// on the same full filesystem.
func TestDiskFullKeepsOldCRL(t *testing.T) {
	l := newLab(t)
	home := newHome(t)
	fullDiskDaemon(t, home, "2m")
	files := t.TempDir()
	rootDER := testpki.WriteFile(files, "root.der", l.root.DER())
	trusted := testpki.WriteFile(files, "trusted", []byte("1"))
	now := time.Now()
	rev := func(c *testpki.Cert) testpki.Entry {
		return testpki.Entry{Serial: c.Cert.SerialNumber, Reason: testpki.ReasonKeyCompromise, Time: now.Add(-time.Hour)}
	}
	crl := func(number int64, entries []testpki.Entry) string {
		spec := &testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(number), ThisUpdate: now.Add(time.Duration(number-10) * time.Minute), NextUpdate: now.Add(24 * time.Hour), Entries: entries}
		return testpki.WriteFile(files, big.NewInt(number).String()+".crl", spec.Build())
	}
	small := crl(1, []testpki.Entry{rev(l.bob)})
	// 300,000 entries: about 6 MB staged, three times the filesystem.
	serials := testpki.RealSerials(300_000, 56, testpki.RevocationOrder)
	big := []testpki.Entry{rev(l.alice)}
	for i := range serials.Len() {
		big = append(big, serials.Entry(i, now.Add(-48*time.Hour)))
	}
	large := crl(2, big)
	later := crl(3, []testpki.Entry{rev(l.alice)})

	session := func(lines ...string) string {
		return gca(t, home, append([]string{"/definqfile SENDCERT_SKI " + rootDER, "/definqfile SENDCERT " + rootDER, "/definqfile ISTRUSTED " + trusted}, lines...)...)
	}
	check := "ISVALID " + certID(t, l.alice) + "\nISVALID " + certID(t, l.bob) + "\nLISTCRLS"
	loaded := func(out string) bool { return strings.HasSuffix(out, "\nOK\n") && !strings.Contains(out, "ERR ") }
	if out := session("LOADCRL " + small); !loaded(out) {
		t.Fatalf("small CRL on the tmpfs: %q", out)
	}
	before := session(check)
	if !strings.Contains(before, "OK\nERR 167772254 Certificate revoked") || !strings.Contains(before, "01") {
		t.Fatalf("before: %q", before)
	}
	out := session("LOADCRL " + large)
	if !strings.Contains(out, "ERR ") || !strings.Contains(out, "No space left on device") {
		t.Fatalf("LOADCRL on a full disk: %q, want an ERR saying No space left on device", out)
	}
	if after := session(check); after != before {
		t.Fatalf("after the failed load:\n%s\nbefore:\n%s", after, before)
	}
	if out := session("LOADCRL " + later); !loaded(out) {
		t.Fatalf("small CRL after the failed load (staged data not removed?): %q", out)
	}
	if out := session("ISVALID " + certID(t, l.alice)); !strings.Contains(out, "ERR 167772254 Certificate revoked") {
		t.Fatalf("after CRL 3: alice %q", out)
	}
}
