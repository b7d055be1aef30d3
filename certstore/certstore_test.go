package certstore_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"path/filepath"
	"testing"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

func TestLoadDirAndLookups(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Store Root", "", "DE"), KeyType: testpki.ECDSA})
	leaf := root.Issue(testpki.Template{Subject: testpki.Name("Store Leaf", "", "DE"), KeyType: testpki.ECDSA})
	dir := t.TempDir()
	testpki.WriteFile(dir, "root.crt", root.DER())
	testpki.WriteFile(dir, "leaf.pem", leaf.PEM())
	testpki.WriteFile(dir, "garbage.der", []byte("not a certificate"))
	testpki.WriteFile(dir, "ignored.txt", root.DER())
	os.Mkdir(filepath.Join(dir, "sub.crt"), 0o700)
	s := certstore.New()
	if n := s.LoadDir(dir, certstore.Trusted, nil); n != 2 {
		t.Fatalf("loaded %d certificates, want 2 (garbage and .txt skipped)", n)
	}
	if n := s.LoadDir(filepath.Join(dir, "missing"), certstore.Extra, nil); n != 0 {
		t.Fatalf("missing dir loaded %d", n)
	}
	rootDN, _ := certid.DN(root.Cert.RawSubject)
	leafSerial, _ := certid.RawSerial(leaf.Cert)
	cases := []struct {
		name string
		got  *certstore.Entry
		want *testpki.Cert
	}{
		{"fingerprint", s.ByFingerprint(root.Fingerprint()), root},
		{"fingerprint-lowercase", s.ByFingerprint(lower(leaf.Fingerprint())), leaf},
		{"subject", first(s.BySubject(rootDN)), root},
		{"ski", first(s.BySKI(root.Cert.SubjectKeyId, rootDN)), root},
		{"issuer-serial", s.ByIssuerSerial(rootDN, leafSerial), leaf},
		{"by-issuer", first(s.ByIssuer("CN=nobody")), nil},
	}
	for _, tc := range cases {
		switch {
		case tc.want == nil && tc.got != nil:
			t.Errorf("%s: unexpected %s", tc.name, tc.got.Subject)
		case tc.want != nil && (tc.got == nil || tc.got.Fpr != tc.want.Fingerprint()):
			t.Errorf("%s: got %v", tc.name, tc.got)
		}
	}
	// Re-adding is not new; a more trusted source upgrades the entry.
	e, added, _ := s.Add(leaf.Cert, certstore.Learned)
	if added || e.Source != certstore.Trusted {
		t.Fatalf("re-add: added=%v source=%v", added, e.Source)
	}
	if !certstore.IsSelfSigned(root.Cert) || certstore.IsSelfSigned(leaf.Cert) {
		t.Fatal("IsSelfSigned")
	}
}

// TestLearnedCap: certificates learned from clients are bounded; the
// oldest go first and configured ones stay.
func TestLearnedCap(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Cap Root", "", ""), KeyType: testpki.ECDSA})
	s := certstore.New()
	s.Add(root.Cert, certstore.Trusted)
	var first *testpki.Cert
	for i := range certstore.MaxLearned + 5 {
		c := root.Issue(testpki.Template{Subject: testpki.Name("learned", "", ""), KeyType: testpki.Ed25519})
		if i == 0 {
			first = c
		}
		s.Add(c.Cert, certstore.Learned)
	}
	learned, _, trusted := s.Len()
	if learned != certstore.MaxLearned || trusted != 1 {
		t.Fatalf("learned %d trusted %d", learned, trusted)
	}
	if s.ByFingerprint(first.Fingerprint()) != nil {
		t.Fatal("oldest learned certificate still cached")
	}
}

// TestLearnedBytesCap: 40 learned certificates of 900 KB each (as a client
// may send through SENDCERT) are bounded by MaxLearnedBytes, not only by
// count.
func TestLearnedBytesCap(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Bytes Root", "", ""), KeyType: testpki.Ed25519})
	s := certstore.New()
	pad := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, 900<<10)}
	var last *testpki.Cert
	for range 40 {
		last = root.Issue(testpki.Template{Subject: testpki.Name("big", "", ""), KeyType: testpki.Ed25519, ExtraExtensions: []pkix.Extension{pad}})
		if _, _, err := s.Add(last.Cert, certstore.Learned); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, e := range s.BySource(certstore.Learned) {
		total += len(e.Cert.Raw)
	}
	if total > certstore.MaxLearnedBytes || total < certstore.MaxLearnedBytes-2*len(last.Cert.Raw) {
		t.Fatalf("learned certificates hold %d bytes, cap %d", total, certstore.MaxLearnedBytes)
	}
	if s.ByFingerprint(last.Fingerprint()) == nil {
		t.Fatal("newest learned certificate dropped")
	}
}

// TestUpgradeNewEntry: a certificate seen again from a more trusted source
// gets a new Entry; entries handed out before never change.
func TestUpgradeNewEntry(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Upgrade Root", "", ""), KeyType: testpki.ECDSA})
	s := certstore.New()
	e1, _, _ := s.Add(root.Cert, certstore.Learned)
	e2, added, _ := s.Add(root.Cert, certstore.Trusted)
	if added || e1.Source != certstore.Learned || e2.Source != certstore.Trusted {
		t.Fatalf("added %v, old entry %v, new entry %v", added, e1.Source, e2.Source)
	}
	if got := s.ByFingerprint(root.Fingerprint()); got != e2 || first(s.BySubject(e2.Subject)) != e2 || first(s.BySKI(root.Cert.SubjectKeyId, "")) != e2 {
		t.Fatal("indexes still hold the old entry")
	}
	if learned, _, trusted := s.Len(); learned != 0 || trusted != 1 {
		t.Fatalf("learned %d trusted %d", learned, trusted)
	}
}

func first(es []*certstore.Entry) *certstore.Entry {
	if len(es) == 0 {
		return nil
	}
	return es[0]
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 32
		}
	}
	return string(b)
}
