package integration

import (
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// cacheFiles lists the names in home's crls.d.
func cacheFiles(t *testing.T, home string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(home, "crls.d"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestKillDuringLoad (threats-and-tests §4.I 54, with crlcache's
// TestKillMidIngest for the store alone): our daemon is killed with
// SIGKILL while a CRL comes over HTTP (half the body sent), and at random
// points of a LOADCRL of a 300,000-entry CRL file (parsing, staging,
// commit). After a restart the cache answers either exactly as before
// (CRL 1: bob revoked, alice valid) or, if the commit had happened,
// wholly from CRL 2 (alice revoked, bob not) — never a mix — and the failed
// load's files are gone (crls.d holds crls.db and one CRL file, as after a
// clean load).
func TestKillDuringLoad(t *testing.T) {
	l := newLab(t)
	files := t.TempDir()
	rootDER := testpki.WriteFile(files, "root.der", l.root.DER())
	trusted := testpki.WriteFile(files, "trusted", []byte("1"))
	now := time.Now()
	rev := func(c *testpki.Cert) testpki.Entry {
		return testpki.Entry{Serial: c.Cert.SerialNumber, Reason: testpki.ReasonKeyCompromise, Time: now.Add(-time.Hour)}
	}
	small := testpki.WriteFile(files, "1.crl", (&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour), Entries: []testpki.Entry{rev(l.bob)}}).Build())
	serials := testpki.RealSerials(300_000, 54, testpki.RevocationOrder)
	entries := []testpki.Entry{rev(l.alice)}
	for i := range serials.Len() {
		entries = append(entries, serials.Entry(i, now.Add(-48*time.Hour)))
	}
	largeDER := (&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(2), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour), Entries: entries}).Build()
	large := testpki.WriteFile(files, "2.crl", largeDER)

	// A distribution point that sends half the large CRL, then waits.
	halfSent := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", big.NewInt(int64(len(largeDER))).String())
		w.Write(largeDER[:len(largeDER)/2])
		w.(http.Flusher).Flush()
		halfSent <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go hs.Serve(ln)
	defer hs.Close()
	slowURL := "http://" + ln.Addr().String() + "/slow.crl"

	home := newHome(t)
	inq := []string{"/definqfile SENDCERT_SKI " + rootDER, "/definqfile SENDCERT " + rootDER, "/definqfile ISTRUSTED " + trusted}
	session := func(lines ...string) string { return gca(t, home, append(inq, lines...)...) }
	check := "ISVALID " + certID(t, l.alice) + "\nISVALID " + certID(t, l.bob) + "\nLISTCRLS"
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	restore := func() (string, []string) {
		out := session("FLUSHCRLS", "LOADCRL "+small)
		if !strings.HasSuffix(out, "\nOK\n") || strings.Contains(out, "ERR ") {
			t.Fatalf("LOADCRL of CRL 1: %q", out)
		}
		return session(check), cacheFiles(t, home)
	}
	before, beforeFiles := restore()
	if !strings.Contains(before, "OK\nERR 167772254 Certificate revoked") {
		t.Fatalf("CRL 1: %q", before)
	}
	// What CRL 2 answers, and how long its load takes.
	start := time.Now()
	if out := session("LOADCRL " + large); strings.Contains(out, "ERR ") {
		t.Fatalf("LOADCRL of CRL 2: %q", out)
	}
	full := time.Since(start)
	afterNew := session(check)
	if afterNew == before || !strings.Contains(afterNew, "ERR 167772254 Certificate revoked <Dirmngr>\nOK\n") {
		t.Fatalf("CRL 2: %q", afterNew)
	}
	restore()

	// load starts the command in the background and kills the daemon when
	// ready says so; the daemon is then restarted and checked.
	killDuring := func(what, cmd string, ready func()) {
		t.Helper()
		gcaCmd := exec.Command(requireTool(t, "gpg-connect-agent"), "--homedir", home, "--no-autostart", "--dirmngr")
		gcaCmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		gcaCmd.Stdin = strings.NewReader(strings.Join(append(inq, cmd), "\n") + "\n")
		if err := gcaCmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready()
		syscall.Kill(pid, syscall.SIGKILL)
		gcaCmd.Wait()
		waitExit(t, pid, "killed daemon")
		os.Remove(filepath.Join(home, "S.dirmngr"))
		pid = startDaemon(t, bin(t, "dirmngr"), home)
		got := session(check)
		if names := cacheFiles(t, home); len(names) != len(beforeFiles) || !slices.Contains(names, "crls.db") {
			t.Errorf("%s: crls.d holds %v, after a clean load %v", what, names, beforeFiles)
		}
		switch got {
		case before, afterNew:
		default:
			t.Errorf("%s: after the restart\n%s\nwant CRL 1's answers\n%s\nor CRL 2's\n%s", what, got, before, afterNew)
		}
		restore()
	}
	killDuring("mid-download", "LOADCRL --url "+slowURL, func() {
		select {
		case <-halfSent:
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon did not fetch the CRL")
		}
	})
	rng := rand.New(rand.NewPCG(54, 56))
	for run := range 6 {
		delay := time.Duration(rng.Int64N(int64(full)))
		killDuring("LOADCRL killed after "+delay.String()+" (run "+string(rune('0'+run))+")", "LOADCRL "+large, func() { time.Sleep(delay) })
	}
}
