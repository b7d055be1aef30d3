package integration

import (
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestProgressCounts: a long CRL load reports its progress with counts in
// GnuPG's status format ("S PROGRESS load_crl ? <entries> 0"), and
// dirmngr-client and the one-shot --load-crl show those counts.
func TestProgressCounts(t *testing.T) {
	daemon := bin(t, "dirmngr")
	client := bin(t, "dirmngr-client")
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Progress Root", "Dirmngr Research", "DE")})
	now := time.Now()
	entries := make([]testpki.Entry, 70000)
	for i := range entries {
		entries[i] = testpki.Entry{Serial: big.NewInt(int64(i + 1)), Time: now.Add(-time.Hour), Reason: testpki.ReasonNone}
	}
	spec := &testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour), Entries: entries}
	data := spec.Build()

	// One-shot, no daemon: the -v progress lines.
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", root.DER())
	crlFile := testpki.WriteFile(home, "big.crl", data)
	res := runProg(t, daemon, home, "--homedir", home, "-v", "--load-crl", crlFile)
	if res.code != 0 || !strings.Contains(res.errOut, "dirmngr: 65536 entries read ...") {
		t.Errorf("one-shot --load-crl -v: exit %d, stderr %q", res.code, res.errOut)
	}

	startDaemon(t, daemon, home)
	out := gca(t, home, "LOADCRL "+crlFile)
	if !strings.Contains(out, "S PROGRESS load_crl ? 65536 0\n") || !strings.HasSuffix(out, "OK\n") {
		t.Errorf("LOADCRL status lines: %q", out)
	}
	res = runProg(t, client, home, "-v", "--load-crl", crlFile)
	if res.code != 0 || !strings.Contains(res.errOut, "dirmngr-client: loading CRL: 65536 entries read ...") {
		t.Errorf("dirmngr-client -v --load-crl: exit %d, stderr %q", res.code, res.errOut)
	}
}
