package integration

import (
	"bytes"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// lab is a PKI served over HTTP on loopback: a root, an intermediate and
// end-entity certificates whose CRL distribution points point at the
// server.
type lab struct {
	dir  string
	base string // http://127.0.0.1:port
	mu   sync.Mutex
	srv  map[string][]byte
	hits map[string]int

	root, inter                                 *testpki.Cert
	alice, bob, carol, dan, erin, frank, george *testpki.Cert
}

func (l *lab) serve(path string, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.srv[path] = data
}

func (l *lab) hit(path string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hits[path]
}

func (l *lab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	data, ok := l.srv[r.URL.Path]
	l.hits[r.URL.Path]++
	l.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(data)
}

func newLab(t testing.TB) *lab {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{dir: t.TempDir(), base: "http://" + ln.Addr().String(), srv: map[string][]byte{}, hits: map[string]int{}}
	hs := &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	org := "Dirmngr Research"
	l.root = testpki.NewRoot(testpki.Template{Subject: testpki.Name("Test Root CA", org, "DE")})
	l.inter = l.root.Issue(testpki.Template{Subject: testpki.Name("Test Sub CA", org, "DE"), IsCA: true, CRLURLs: []string{l.base + "/root.crl"}})
	ee := func(ca *testpki.Cert, cn string, serial int64, dp string) *testpki.Cert {
		return ca.Issue(testpki.Template{Subject: testpki.Name(cn, org, "DE"), Serial: big.NewInt(serial), CRLURLs: []string{l.base + dp}})
	}
	l.alice = ee(l.root, "alice test", 0x1000, "/root.crl")
	l.bob = ee(l.root, "bob test", 0x1001, "/root.crl")
	l.carol = ee(l.root, "carol test", 0x1002, "/old/root.crl")
	l.dan = ee(l.root, "dan test", 0x1003, "/missing.crl")
	l.erin = ee(l.inter, "erin test", 0x2000, "/inter.crl")
	l.frank = ee(l.inter, "frank test", 0x2001, "/inter.crl")
	l.george = ee(l.root, "george test", 0x80F1, "/root.crl") // serial with the high bit set

	now := time.Now()
	rev := func(c *testpki.Cert) testpki.Entry {
		return testpki.Entry{Serial: c.Cert.SerialNumber, Reason: testpki.ReasonKeyCompromise, Time: now.Add(-time.Hour)}
	}
	l.serve("/root.crl", (&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour), Entries: []testpki.Entry{rev(l.bob)}}).Build())
	l.serve("/old/root.crl", (&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(1), ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour), Entries: []testpki.Entry{rev(l.bob)}}).Build())
	l.serve("/inter.crl", (&testpki.CRLSpec{Issuer: l.inter, Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(24 * time.Hour), Entries: []testpki.Entry{rev(l.frank)}}).Build())
	return l
}

// gpgsmHome prepares a gpgsm home directory using dirmngrProgram, with the
// lab's certificates imported and the root trusted.
func (l *lab) gpgsmHome(t testing.TB, dirmngrProgram string) string {
	t.Helper()
	home := newHome(t)
	os.WriteFile(filepath.Join(home, "gpgsm.conf"), []byte("dirmngr-program "+dirmngrProgram+"\n"), 0o600)
	os.WriteFile(filepath.Join(home, "trustlist.txt"), []byte(l.root.Fingerprint()+" S\n"), 0o600)
	var files []string
	for i, c := range []*testpki.Cert{l.root, l.inter, l.alice, l.bob, l.carol, l.dan, l.erin, l.frank, l.george} {
		files = append(files, testpki.WriteFile(home, fmt.Sprintf("c%d.der", i), c.DER()))
	}
	cmd := exec.Command(requireTool(t, "gpgsm"), append([]string{"--homedir", home, "--batch", "--disable-dirmngr", "--import"}, files...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpgsm --import: %v\n%s", err, out)
	}
	return home
}

// sign makes a detached CMS signature of data by signer with openssl.
func (l *lab) sign(t testing.TB, signer *testpki.Cert, name string) (sig, data string) {
	t.Helper()
	data = testpki.WriteFile(l.dir, name+".txt", []byte("hello from "+name+"\n"))
	certPEM := testpki.WriteFile(l.dir, name+".pem", signer.PEM())
	keyPEM := testpki.WriteFile(l.dir, name+".key", signer.KeyPEM())
	sig = filepath.Join(l.dir, name+".p7s")
	out, err := exec.Command(requireTool(t, "openssl"), "cms", "-sign", "-binary", "-in", data, "-signer", certPEM, "-inkey", keyPEM, "-outform", "DER", "-out", sig).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, out)
	}
	return sig, data
}

// verdictLines are the gpgsm messages that describe a revocation outcome.
var verdictLines = []string{
	"Good signature",
	"certificate has been revoked",
	"the available CRL is too old",
	"the status of the certificate is unknown",
	"no CRL found for certificate",
	"checking the CRL failed",
	"invalid certification chain",
}

func verdict(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		for _, v := range verdictLines {
			if i := strings.Index(line, v); i >= 0 {
				out = append(out, strings.TrimSpace(line[i:]))
			}
		}
	}
	return strings.Join(out, " | ")
}

func runGpgsm(t testing.TB, home string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(requireTool(t, "gpgsm"), append([]string{"--homedir", home, "--batch"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C", "LANGUAGE=")
	var stderr, stdout bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, &stdout
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("gpgsm: %v", err)
	}
	return stdout.String() + stderr.String(), code
}

// TestGpgsmVerifyMatchesGnuPG runs gpgsm --verify for every scenario once
// with our dirmngr and once with GnuPG's (both autostarted by gpgsm) and
// requires the same verdicts, which must also be the expected ones.
func TestGpgsmVerifyMatchesGnuPG(t *testing.T) {
	ours := bin(t, "dirmngr")
	theirs := requireTool(t, "dirmngr")
	l := newLab(t)
	scenarios := []struct {
		name   string
		signer *testpki.Cert
		want   string // substring every verdict must contain
		ok     bool
	}{
		{"valid-2-level", l.alice, "Good signature", true},
		{"revoked-2-level", l.bob, "certificate has been revoked", false},
		{"crl-too-old", l.carol, "the available CRL is too old", false},
		{"crl-404", l.dan, "the status of the certificate is unknown", false},
		{"valid-3-level", l.erin, "Good signature", true},
		{"revoked-3-level", l.frank, "certificate has been revoked", false},
		{"high-bit-serial", l.george, "Good signature", true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sig, data := l.sign(t, sc.signer, sc.name)
			var verdicts [2]string
			for i, prog := range []string{ours, theirs} {
				home := l.gpgsmHome(t, prog)
				out, code := runGpgsm(t, home, "--verify", sig, data)
				verdicts[i] = verdict(out)
				if !strings.Contains(verdicts[i], sc.want) || (code == 0) != sc.ok {
					t.Errorf("%s with %s: exit %d, verdict %q, want %q\n%s", sc.name, prog, code, verdicts[i], sc.want, out)
				}
				if i == 0 {
					// The second verification is answered from the cache.
					out2, code2 := runGpgsm(t, home, "--verify", sig, data)
					if v := verdict(out2); v != verdicts[0] || code2 != code {
						t.Errorf("cached verdict %q (exit %d), first %q (exit %d)", v, code2, verdicts[0], code)
					}
				}
			}
			if verdicts[0] != verdicts[1] {
				t.Errorf("verdicts differ:\n ours:   %s\n GnuPG:  %s", verdicts[0], verdicts[1])
			}
		})
	}
}

// TestGpgsmListKeysWithValidation compares `gpgsm --list-keys
// --with-validation` through both daemons.
func TestGpgsmListKeysWithValidation(t *testing.T) {
	ours := bin(t, "dirmngr")
	theirs := requireTool(t, "dirmngr")
	l := newLab(t)
	var outs [2]string
	for i, prog := range []string{ours, theirs} {
		home := l.gpgsmHome(t, prog)
		out, _ := runGpgsm(t, home, "--list-keys", "--with-validation")
		var keep []string
		for _, line := range strings.Split(out, "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "ID:") || strings.HasPrefix(line, "[") || strings.HasPrefix(line, "Subject:") {
				keep = append(keep, line)
			}
		}
		outs[i] = strings.Join(keep, "\n")
	}
	if outs[0] != outs[1] {
		t.Errorf("--with-validation differs:\n--- ours\n%s\n--- GnuPG\n%s\n%s", outs[0], outs[1], diff(outs[1], outs[0]))
	}
	if !strings.Contains(outs[0], "revoked") {
		t.Errorf("no revoked certificate reported:\n%s", outs[0])
	}
}
