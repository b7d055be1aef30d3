package certstore_test

import (
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
