package integration

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// ocspResponder answers OCSP requests by running `openssl ocsp` on each
// one (the responder itself is OpenSSL; the handler only moves bytes).
type ocspResponder struct {
	t        testing.TB
	dir      string
	openssl  string
	mu       sync.Mutex
	index    []string
	signer   *testpki.Cert // signs responses
	ca       *testpki.Cert
	extra    []string // extra openssl ocsp arguments
	requests int
	// tamperNonce changes the request's nonce before openssl sees it, so
	// that the response echoes a nonce the client did not send.
	tamperNonce bool
}

// nonceExt is the DER prefix of the nonce extension dirmngr sends: the
// id-pkix-ocsp-nonce OID and an OCTET STRING holding a 16-byte OCTET STRING.
var nonceExt = []byte{0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02, 0x04, 0x12, 0x04, 0x10}

func newOCSPResponder(t testing.TB, ca, signer *testpki.Cert) (*ocspResponder, string) {
	r := &ocspResponder{t: t, dir: t.TempDir(), openssl: requireTool(t, "openssl"), ca: ca, signer: signer}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL + "/ocsp"
}

// add records a certificate in the responder's index: revoked or valid.
func (r *ocspResponder) add(c *testpki.Cert, revoked bool) {
	exp := c.Cert.NotAfter.UTC().Format("060102150405Z")
	serial := strings.ToUpper(c.Cert.SerialNumber.Text(16))
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	line := fmt.Sprintf("V\t%s\t\t%s\tunknown\t/CN=%s", exp, serial, c.Cert.Subject.CommonName)
	if revoked {
		line = fmt.Sprintf("R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s", exp, time.Now().Add(-time.Hour).UTC().Format("060102150405Z"), serial, c.Cert.Subject.CommonName)
	}
	r.mu.Lock()
	r.index = append(r.index, line)
	r.mu.Unlock()
}

func (r *ocspResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil {
		http.Error(w, "read", 400)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.tamperNonce {
		if i := bytes.Index(body, nonceExt); i >= 0 && i+len(nonceExt) < len(body) {
			body[i+len(nonceExt)] ^= 0xff
		}
	}
	index := testpki.WriteFile(r.dir, "index.txt", []byte(strings.Join(r.index, "\n")+"\n"))
	caFile := testpki.WriteFile(r.dir, "ca.pem", r.ca.PEM())
	signerFile := testpki.WriteFile(r.dir, "signer.pem", r.signer.PEM())
	keyFile := testpki.WriteFile(r.dir, "signer.key", r.signer.KeyPEM())
	reqFile := testpki.WriteFile(r.dir, "req.der", body)
	respFile := filepath.Join(r.dir, "resp.der")
	args := append([]string{"ocsp", "-index", index, "-CA", caFile, "-rsigner", signerFile, "-rkey", keyFile,
		"-reqin", reqFile, "-respout", respFile, "-ndays", "1"}, r.extra...)
	if out, err := exec.Command(r.openssl, args...).CombinedOutput(); err != nil {
		r.t.Logf("openssl ocsp: %v\n%s", err, out)
		http.Error(w, "responder failed", 500)
		return
	}
	resp, _ := os.ReadFile(respFile)
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

type ocspLab struct {
	*lab
	resp                  *ocspResponder
	url                   string
	good, revoked, nobody *testpki.Cert
}

// newOCSPLab builds a root whose end entities point at an openssl
// responder signed by the root itself.
func newOCSPLab(t *testing.T) *ocspLab {
	l := newLab(t)
	// A root that lists its own CRL, so that gpgsm's check of the root
	// (OCSP, then the CRL fallback since it has no responder) succeeds.
	l.root = testpki.NewRoot(testpki.Template{Subject: testpki.Name("OCSP Root CA", "Dirmngr Research", "DE"), CRLURLs: []string{l.base + "/ocsproot.crl"}})
	l.serve("/ocsproot.crl", (&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour)}).Build())
	o := &ocspLab{lab: l}
	o.resp, o.url = newOCSPResponder(t, l.root, l.root)
	mk := func(cn string, serial int64) *testpki.Cert {
		return l.root.Issue(testpki.Template{Subject: testpki.Name(cn, "Dirmngr Research", "DE"), Serial: big.NewInt(serial),
			CRLURLs: []string{l.base + "/root.crl"}, OCSPURLs: []string{o.url}})
	}
	o.good = mk("ocsp good", 0x3000)
	o.revoked = mk("ocsp revoked", 0x3001)
	o.nobody = mk("ocsp unknown", 0x3002)
	o.resp.add(o.good, false)
	o.resp.add(o.revoked, true)
	return o
}

// TestGpgsmOCSPMatchesGnuPG: gpgsm --enable-ocsp verifies through our
// dirmngr and GnuPG's (allow-ocsp) with the same verdicts.
func TestGpgsmOCSPMatchesGnuPG(t *testing.T) {
	ours := bin(t, "dirmngr")
	theirs := requireTool(t, "dirmngr")
	o := newOCSPLab(t)
	for _, sc := range []struct {
		name   string
		signer *testpki.Cert
		want   string
	}{
		{"ocsp-good", o.good, "Good signature"},
		{"ocsp-revoked", o.revoked, "certificate has been revoked"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			sig, data := o.sign(t, sc.signer, sc.name)
			var verdicts [2]string
			for i, prog := range []string{ours, theirs} {
				home := o.gpgsmHome(t, prog)
				testpki.WriteFile(home, "c-extra.der", sc.signer.DER())
				exec.Command("gpgsm", "--homedir", home, "--batch", "--disable-dirmngr", "--import", filepath.Join(home, "c-extra.der")).Run()
				os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("allow-ocsp\n"), 0o600)
				out, _ := runGpgsm(t, home, "--enable-ocsp", "--verify", sig, data)
				verdicts[i] = verdict(out)
				if !strings.Contains(verdicts[i], sc.want) {
					t.Errorf("%s: verdict %q, want %q\n%s", prog, verdicts[i], sc.want, out)
				}
			}
			if verdicts[0] != verdicts[1] {
				t.Errorf("verdicts differ:\n ours:  %s\n GnuPG: %s", verdicts[0], verdicts[1])
			}
		})
	}
}

// TestCheckOCSPCases drives CHECKOCSP (our dirmngr-client --ocsp) against
// openssl responders in good and hostile configurations.
func TestCheckOCSPCases(t *testing.T) {
	daemon := bin(t, "dirmngr")
	client := bin(t, "dirmngr-client")
	o := newOCSPLab(t)
	home := newHome(t)
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("allow-ocsp\n"), 0o600)
	os.MkdirAll(filepath.Join(home, "extra-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "extra-certs"), "root.crt", o.root.DER())
	startDaemon(t, daemon, home)
	check := func(c *testpki.Cert, wantCode int, want string) {
		t.Helper()
		r := runClientProg(t, client, home, c.DER(), "-v", "--ocsp")
		if r.code != wantCode || !strings.Contains(r.out, want) {
			t.Errorf("exit %d (want %d), output %q lacks %q", r.code, wantCode, r.out, want)
		}
	}
	check(o.good, 0, "certificate is valid")
	check(o.revoked, 1, "certificate has been revoked")
	check(o.nobody, 2, "No data")
	// Answers are cached: the same checks make no new requests.
	before := o.resp.requests
	check(o.good, 0, "certificate is valid")
	check(o.revoked, 1, "certificate has been revoked")
	if o.resp.requests != before {
		t.Errorf("cached answers caused %d requests", o.resp.requests-before)
	}

	// A delegated responder without id-kp-OCSPSigning is rejected; with it
	// the answer is accepted.
	noEKU := o.root.Issue(testpki.Template{Subject: testpki.Name("responder no eku", "", "")})
	withEKU := o.root.Issue(testpki.Template{Subject: testpki.Name("responder", "", ""), ExtKeyUse: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	other := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Other Root", "", "")})
	fresh := func(cn string, serial int64) *testpki.Cert {
		c := o.root.Issue(testpki.Template{Subject: testpki.Name(cn, "", ""), Serial: big.NewInt(serial), OCSPURLs: []string{o.url}})
		o.resp.add(c, false)
		return c
	}
	o.resp.signer = noEKU
	check(fresh("d1", 0x4001), 2, "Bad CA certificate")
	o.resp.signer = withEKU
	if r := runClientProg(t, client, home, fresh("d2", 0x4002).DER(), "-vv", "--ocsp"); r.code != 0 ||
		!strings.Contains(r.out, "status: ONLY_VALID_IF_CERT_VALID "+withEKU.Fingerprint()) {
		t.Errorf("delegated responder: exit %d\n%s", r.code, r.out)
	}
	o.resp.signer = other
	check(fresh("d3", 0x4003), 2, "certificate check failed")
	o.resp.signer = o.root
	// A response carrying another nonce is refused.
	o.resp.tamperNonce = true
	check(fresh("nonce", 0x4005), 2, "certificate check failed")
	o.resp.tamperNonce = false
	check(fresh("nonce ok", 0x4006), 0, "certificate is valid")
	// Responder down: GnuPG's errno code and words (transport_test.go
	// compares the wire answer with GnuPG's dirmngr).
	down := o.root.Issue(testpki.Template{Subject: testpki.Name("down", "", ""), OCSPURLs: []string{"http://127.0.0.1:1/ocsp"}})
	check(down, 2, "certificate check failed: Connection refused")
	stats := gca(t, home, "GETINFO stats")
	if !strings.Contains(stats, "ocsp_cache_hits 2") {
		t.Errorf("stats: %q", stats)
	}

	// Default responder with a pinned signer from another PKI: accepted,
	// and no ONLY_VALID_IF_CERT_VALID status (the signer is trusted as is).
	pinned := other.Issue(testpki.Template{Subject: testpki.Name("pinned signer", "", "")})
	dresp, durl := newOCSPResponder(t, o.root, pinned)
	target := o.root.Issue(testpki.Template{Subject: testpki.Name("default responder", "", ""), Serial: big.NewInt(0x5001)})
	dresp.add(target, false)
	home2 := newHome(t)
	os.WriteFile(filepath.Join(home2, "dirmngr.conf"), []byte("allow-ocsp\nocsp-responder "+durl+"\nocsp-signer "+pinned.Fingerprint()+"\n"), 0o600)
	os.MkdirAll(filepath.Join(home2, "extra-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home2, "extra-certs"), "root.crt", o.root.DER())
	testpki.WriteFile(filepath.Join(home2, "extra-certs"), "signer.crt", pinned.DER())
	startDaemon(t, daemon, home2)
	r := runClientProg(t, client, home2, target.DER(), "-vv", "--ocsp", "--force-default-responder")
	if r.code != 0 || strings.Contains(r.out, "ONLY_VALID_IF_CERT_VALID") {
		t.Errorf("pinned default responder: exit %d\n%s", r.code, r.out)
	}
	// Once the pin names another certificate, the same responder's
	// answers are refused.
	os.WriteFile(filepath.Join(home2, "dirmngr.conf"), []byte("allow-ocsp\nocsp-responder "+durl+"\nocsp-signer "+o.root.Fingerprint()+"\n"), 0o600)
	gca(t, home2, "RELOADDIRMNGR")
	target2 := o.root.Issue(testpki.Template{Subject: testpki.Name("unpinned", "", ""), Serial: big.NewInt(0x5002)})
	dresp.add(target2, false)
	if r := runClientProg(t, client, home2, target2.DER(), "-v", "--ocsp", "--force-default-responder"); r.code != 2 {
		t.Errorf("signer not pinned any more: exit %d\n%s", r.code, r.out)
	}
	gca(t, home2, "KILLDIRMNGR")
}
