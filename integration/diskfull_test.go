package integration

import (
	"bytes"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestFetchCRLDiskFull (threats-and-tests §4.I 56, installer side): the
// output directory is a 1 MB tmpfs (in fetch-crl's own mount namespace)
// when a 300,000-entry CRL replaces a small one. fetch-crl says "no space
// left on device" (a download failure: a warning while the old CRL is
// within its grace period, as fetch-crl 3), and the directory OpenSSL
// reads holds the old CRL file intact: no zero-length or cut file, no
// temporary file left.
func TestFetchCRLDiskFull(t *testing.T) {
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unshare -m (needed for a small tmpfs): %v %s", err, out)
		}
		t.Skipf("no mount namespace here: %v %s", err, out)
	}
	ours := bin(t, "fetch-crl")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	h := l.addCA(t, "FullCA", "crl_url", testpki.RSA, l.base+"/full.crl\n")
	l.serve("/full.crl", l.crl("FullCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 2))
	if res := l.runFC(t, ours, "full"); res.code != 0 || len(res.files[h+".r0"]) == 0 {
		t.Fatalf("first run: exit %d %q, files %v", res.code, res.lines, keys(res.files))
	}
	out := filepath.Join(l.dir, "full", "out")
	old, err := os.ReadFile(filepath.Join(out, h+".r0"))
	if err != nil {
		t.Fatal(err)
	}
	serials := testpki.RealSerials(300_000, 5656, testpki.RevocationOrder)
	var entries []testpki.Entry
	for i := range serials.Len() {
		entries = append(entries, serials.Entry(i, now.Add(-48*time.Hour)))
	}
	l.serve("/full.crl", (&testpki.CRLSpec{Issuer: l.cas["FullCA"], Number: big.NewInt(2), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(48 * time.Hour), Entries: entries}).Build())
	// The wrapper copies the output directory onto the tmpfs, runs
	// fetch-crl, and copies what it left to out.post (outside the tmpfs).
	wrapper := testpki.WriteFile(t.TempDir(), "fetch-crl-on-tmpfs", []byte("#!/bin/sh\n"+
		"exec unshare -m --propagation private sh -c '"+
		"rm -rf \"$0.pre\" \"$0.post\" && cp -a \"$0\" \"$0.pre\" && mount -t tmpfs -o size=1m tmpfs \"$0\" && cp -a \"$0.pre/.\" \"$0/\" || exit 99; "+
		ours+" \"$@\"; rc=$?; cp -a \"$0\" \"$0.post\"; exit $rc' "+out+" \"$@\"\n"))
	os.Chmod(wrapper, 0o755)
	res := l.runFC(t, wrapper, "full")
	if res.code == 99 || !strings.Contains(strings.Join(res.lines, "\n"), "no space left on device") {
		t.Fatalf("fetch-crl on a full disk: exit %d %q", res.code, res.lines)
	}
	names := func(dir string) (s []string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			fi, _ := e.Info()
			s = append(s, fmt.Sprintf("%s:%d", e.Name(), fi.Size()))
		}
		return s
	}
	got, _ := os.ReadFile(filepath.Join(out+".post", h+".r0"))
	if after, before := names(out+".post"), names(out); !slices.Equal(after, before) || !bytes.Equal(got, old) {
		t.Fatalf("after the failed run the output directory holds %v, before %v; messages %q", after, before, res.lines)
	}
}
