package integration

import (
	"bufio"
	"context"
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// pkitsCase is one row of testdata/pkits/expected.tsv.
type pkitsCase struct {
	id, name, expected, ee string
	others, crls           []string
}

// pkitsKnown lists the PKITS cases whose verdict through gpgsm and our
// daemon is not yet the expected one, with the verdict they give today.
// Every entry must fail closed (never "valid" where PKITS expects
// otherwise): a fail-open verdict fails the test whether listed or not.
// A listed case whose verdict changes fails the test too, so the list
// stays exact.
var pkitsKnown = map[string]string{}

// pkitsLoadErrors are the answers GnuPG gives to LOADCRL for the CRLs
// PKITS makes unusable, by case and CRL.
var pkitsLoadErrors = map[string]map[string]string{
	"4.4.4":  {"BadCRLSignatureCACRL.crl": "Bad signature"},
	"4.4.8":  {"UnknownCRLEntryExtensionCACRL.crl": "Unknown critical extension"},
	"4.4.9":  {"UnknownCRLExtensionCACRL.crl": "Invalid CRL"},
	"4.4.10": {"UnknownCRLExtensionCACRL.crl": "Invalid CRL"},
	"4.7.4":  {"keyUsageCriticalcRLSignFalseCACRL.crl": "Wrong key usage"},
	"4.7.5":  {"keyUsageNotCriticalcRLSignFalseCACRL.crl": "Wrong key usage"},
}

// pkitsListings are lines LISTCRLS must show for a case's CRLs: each
// stored CRL with its scope (RFC 5280 extensions), besides GnuPG's fields.
var pkitsListings = map[string][]string{
	"4.14.5":  {"   DP name  :\tCN=CRL1 of distributionPoint2 CA,OU=distributionPoint2 CA,O=Test Certificates 2011,C=US"},
	"4.14.12": {"   Flags    :\tonly CA certificates"},
	"4.14.17": {"   Reasons  :\taffiliation_changed superseded"},
	"4.14.31": {"   Flags    :\tindirect CRL", "  02:\t reasons( key_compromise ) rdate: 20100101T083000 issuer-hash: "},
	"4.15.2":  {" Delta CRL  :\tfor base CRL number 01", " Delta CRLs :\tnamed (freshestCRL)"},
}

// pkitsCheckCRL are cases whose end entity is also checked with CHECKCRL
// (the certificate sent in full, TARGETCERT): crypto/x509 refuses these
// certificates (nameRelativeToCRLIssuer), dirmngr still reads them.
var pkitsCheckCRL = map[string]bool{"4.14.4": true, "4.14.6": true, "4.14.29": true}

func readPKITS(t *testing.T) []pkitsCase {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "pkits", "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []pkitsCase
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) < 7 {
			t.Fatalf("expected.tsv: short row %q", line)
		}
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		cases = append(cases, pkitsCase{id: fs[0], name: fs[1], expected: fs[2], ee: fs[3], others: split(fs[4]), crls: split(fs[5])})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// TestPKITS runs the CRL cases of NIST PKITS through gpgsm with our
// dirmngr: the case's certificates are imported into gpgsm (the trust
// anchor trusted in trustlist.txt), the CA certificates are given to
// dirmngr as extra-certs, every CRL is loaded with `gpgsm --call-dirmngr
// loadcrl` (a CRL that PKITS means to be unusable may fail to load), and
// the verdict is what `gpgsm --list-keys --with-validation` says about the
// end entity.
func TestPKITS(t *testing.T) {
	ours := bin(t, "dirmngr")
	requireTool(t, "gpgsm")
	cases := readPKITS(t)
	if len(cases) != 72 {
		t.Fatalf("expected.tsv has %d cases, want 72 (71 + the control)", len(cases))
	}
	var mu sync.Mutex
	got := map[string]string{}
	sem := make(chan struct{}, 3)
	t.Run("case", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.id, func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				v, log := runPKITSCase(t, ours, c)
				mu.Lock()
				got[c.id] = v
				mu.Unlock()
				checkPKITSVerdict(t, c, v, log)
				if testing.Verbose() {
					t.Logf("%s: %s\n%s", c.id, v, log)
				}
			})
		}
	})
	if len(got) != len(cases) {
		return // a -run selection: no summary
	}
	pass := 0
	var failing []string
	for _, c := range cases {
		if got[c.id] == c.expected {
			pass++
		} else {
			failing = append(failing, fmt.Sprintf("%s(%s, want %s)", c.id, got[c.id], c.expected))
		}
	}
	sort.Strings(failing)
	t.Logf("PKITS: %d of %d cases give the expected verdict; not yet: %s", pass, len(cases), strings.Join(failing, " "))
}

// checkPKITSVerdict asserts the verdict of one case: the expected one, or
// exactly the recorded one for a known failure; never a fail-open "valid".
func checkPKITSVerdict(t *testing.T, c pkitsCase, v, log string) {
	t.Helper()
	if v == "valid" && c.expected != "valid" {
		t.Errorf("%s %s: FAILS OPEN: verdict valid, want %s\n%s", c.id, c.name, c.expected, log)
		return
	}
	known, isKnown := pkitsKnown[c.id]
	switch {
	case isKnown && v == c.expected:
		t.Errorf("%s %s: now gives the expected verdict %s; remove it from pkitsKnown", c.id, c.name, v)
	case isKnown && v != known:
		t.Errorf("%s %s: verdict %s, recorded known failure %s (want %s)\n%s", c.id, c.name, v, known, c.expected, log)
	case !isKnown && v != c.expected:
		t.Errorf("%s %s: verdict %s, want %s\n%s", c.id, c.name, v, c.expected, log)
	}
}

func fpr(der []byte) string { return fmt.Sprintf("%X", sha1.Sum(der)) }

// runPKITSCase sets up a gpgsm home for c, loads its CRLs and returns the
// verdict (valid, revoked or error) with a transcript for failure messages.
func runPKITSCase(t *testing.T, dirmngrProgram string, c pkitsCase) (string, string) {
	t.Helper()
	data := filepath.Join("testdata", "pkits")
	read := func(dir, name string) []byte {
		b, err := os.ReadFile(filepath.Join(data, dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	home := newHome(t)
	conf := "dirmngr-program " + dirmngrProgram + "\nenable-issuer-based-crl-check\n"
	if err := os.WriteFile(filepath.Join(home, "gpgsm.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	anchor := read("certs", "TrustAnchorRootCertificate.crt")
	if err := os.WriteFile(filepath.Join(home, "trustlist.txt"), []byte(fpr(anchor)+" S\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// dirmngr knows the CA certificates and the anchor as extra-certs
	// (gpgsm --call-dirmngr cannot answer SENDCERT_SKI, which locating a
	// CRL issuer by its key identifier needs); the anchor is trusted by
	// gpgsm's trustlist, which dirmngr consults with ISTRUSTED.
	extra := filepath.Join(home, "extra-certs")
	os.Mkdir(extra, 0o700)
	files := []string{filepath.Join(data, "certs", "TrustAnchorRootCertificate.crt")}
	if err := os.WriteFile(filepath.Join(extra, "TrustAnchorRootCertificate.crt"), anchor, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, o := range c.others {
		if err := os.WriteFile(filepath.Join(extra, o), read("certs", o), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(data, "certs", o))
	}
	files = append(files, filepath.Join(data, "certs", c.ee))
	var log strings.Builder
	if out, code := runGpgsm(t, home, append([]string{"--disable-dirmngr", "--import"}, files...)...); code != 0 {
		t.Fatalf("gpgsm --import: exit %d\n%s", code, out)
	}
	for _, crl := range c.crls {
		abs, err := filepath.Abs(filepath.Join(data, "crls", crl))
		if err != nil {
			t.Fatal(err)
		}
		out, code := runGpgsm(t, home, "--call-dirmngr", "loadcrl", abs)
		fmt.Fprintf(&log, "loadcrl %s: exit %d\n%s", crl, code, indent(out))
		if want, ok := pkitsLoadErrors[c.id][crl]; ok && !strings.Contains(out, "response of dirmngr: "+want) {
			t.Errorf("%s: loadcrl %s: want %q\n%s", c.id, crl, want, out)
		}
	}
	if pkitsCheckCRL[c.id] {
		checkCRLVerdict(t, home, c, read("certs", c.ee), fpr(anchor))
	}
	out, _ := runGpgsm(t, home, "--list-keys", "--with-validation", fpr(read("certs", c.ee)))
	fmt.Fprintf(&log, "list-keys --with-validation:\n%s", indent(out))
	if want, ok := pkitsListings[c.id]; ok || testing.Verbose() {
		list, _ := runGpgsm(t, home, "--call-dirmngr", "listcrls")
		fmt.Fprintf(&log, "listcrls:\n%s", indent(list))
		for _, w := range want {
			if !strings.Contains(list, w) {
				t.Errorf("%s: LISTCRLS lacks %q\n%s", c.id, w, list)
			}
		}
	}
	return pkitsVerdict(out), log.String()
}

// pkitsVerdict reads the end entity's validation result from gpgsm's
// --with-validation listing.
func pkitsVerdict(out string) string {
	v := "error"
	for _, line := range strings.Split(out, "\n") {
		switch strings.TrimSpace(line) {
		case "[certificate is good]":
			v = "valid"
		case "[certificate has been revoked]", "[certificate is bad: Certificate revoked]":
			return "revoked"
		}
		if strings.HasPrefix(strings.TrimSpace(line), "[certificate is bad:") {
			return "error"
		}
	}
	return v
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// checkCRLVerdict runs CHECKCRL for ee on the daemon gpgsm started and
// asserts the case's expected verdict.
func checkCRLVerdict(t *testing.T, home string, c pkitsCase, ee []byte, anchorFpr string) {
	t.Helper()
	cl, err := assuan.Dial(filepath.Join(home, "S.dirmngr"))
	if err != nil {
		t.Fatalf("%s: dialing dirmngr: %v", c.id, err)
	}
	defer cl.Close()
	h := &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
		switch {
		case kw == "TARGETCERT":
			return ee, nil
		case kw == "ISTRUSTED" && args == anchorFpr:
			return []byte("1"), nil
		}
		return []byte{}, nil
	}}
	err = cl.Transact(context.Background(), "CHECKCRL", h)
	want := map[string]gpgerr.Code{"valid": 0, "revoked": gpgerr.ErrCertRevoked}[c.expected]
	if got := gpgerr.CodeOf(err); got != want && !(err == nil && want == 0) {
		t.Errorf("%s: CHECKCRL: %v, want %s", c.id, err, c.expected)
	}
}
