package revocation

import (
	"testing"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestSignerCacheByIdentity: the signer cache answers the same parse for
// the same bytes, parses again for an equal copy in another array (a new
// CRL's record), and refuses what does not parse.
func TestSignerCacheByIdentity(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Signer Cache CA", "", ""), KeyType: testpki.ECDSA})
	der := ca.DER()
	var sc signerCache
	a, err := sc.parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := sc.parse(der); b != a {
		t.Error("the same bytes were parsed again")
	}
	if b, _ := sc.parse(der[:len(der):len(der)]); b != a {
		t.Error("the same bytes through another slice header were parsed again")
	}
	other := append([]byte(nil), der...)
	b, err := sc.parse(other)
	if err != nil {
		t.Fatal(err)
	}
	if b == a {
		t.Error("an equal copy in another array answered the first array's entry")
	}
	if string(b.Raw) != string(a.Raw) || b.Subject != a.Subject {
		t.Errorf("the copy parsed to %q, want %q", b.Subject, a.Subject)
	}
	if _, err := sc.parse(der[:10]); err == nil {
		t.Error("a truncated certificate parsed")
	}
	for range maxSigners + 1 {
		sc.parse(append([]byte(nil), der...))
	}
	if n := len(sc.m); n > maxSigners {
		t.Errorf("%d entries kept, want at most %d", n, maxSigners)
	}
}

// BenchmarkSignerCacheHit: the signer lookup of every check of a
// certificate in good standing against a cached CRL.
func BenchmarkSignerCacheHit(b *testing.B) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Signer Cache CA", "Dirmngr Research", "DE")})
	der := ca.DER()
	var sc signerCache
	if _, err := sc.parse(der); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sc.parse(der)
	}
}
