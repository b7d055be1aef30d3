package revocation_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/revocation"
)

// The RFC 5280 rules, each with its fail-open trap: the answer "valid"
// must only come when the CRLs consulted cover the certificate fully.

type rfcLab struct {
	t    *testing.T
	e    *env
	root *testpki.Cert
	now  time.Time
}

func newRFCLab(t *testing.T) *rfcLab { return newRFCLabWith(t, revocation.Config{}) }

// newRFCLabWith is newRFCLab with a configuration (e.g. a clock).
func newRFCLabWith(t *testing.T, cfg revocation.Config) *rfcLab {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("RFC 5280 Root", "", ""), KeyType: testpki.ECDSA})
	l := &rfcLab{t: t, e: newEnvWith(t, cfg, root), root: root, now: time.Now()}
	l.load(&testpki.CRLSpec{Issuer: root, Number: big.NewInt(1)})
	return l
}

// load builds, signs and loads a CRL; Number, ThisUpdate and NextUpdate
// get defaults.
func (l *rfcLab) load(s *testpki.CRLSpec) error {
	l.t.Helper()
	if s.ThisUpdate.IsZero() {
		s.ThisUpdate = l.now.Add(-time.Hour)
	}
	if s.NextUpdate.IsZero() {
		s.NextUpdate = l.now.Add(time.Hour)
	}
	_, err := l.e.chk.Load(context.Background(), nil, bytes.NewReader(s.Build()), "test", fetch.Validators{})
	return err
}

func (l *rfcLab) mustLoad(s *testpki.CRLSpec) {
	l.t.Helper()
	if err := l.load(s); err != nil {
		l.t.Fatal(err)
	}
}

func (l *rfcLab) ca(name string, ku x509.KeyUsage) *testpki.Cert {
	c := l.root.Issue(testpki.Template{Subject: testpki.Name(name, "", ""), IsCA: true, KeyType: testpki.ECDSA, KeyUsage: ku})
	l.e.certs.Add(c.Cert, certstore.Extra)
	return c
}

func (l *rfcLab) ee(ca *testpki.Cert, serial int64, exts ...pkix.Extension) *testpki.Cert {
	return ca.Issue(testpki.Template{Subject: testpki.Name("ee", "", ""), Serial: big.NewInt(serial), KeyType: testpki.ECDSA, ExtraExtensions: exts})
}

// status checks cert the way ISVALID does after SENDCERT.
func (l *rfcLab) status(c *testpki.Cert) revocation.Status {
	l.t.Helper()
	in, err := certinfo.Parse(c.DER())
	if err != nil {
		l.t.Fatal(err)
	}
	st, err := l.e.chk.CheckInfo(context.Background(), nil, in)
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

func (l *rfcLab) want(what string, c *testpki.Cert, want revocation.Status) {
	l.t.Helper()
	if got := l.status(c); got != want {
		l.t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func rev(serial int64, reason int, exts ...testpki.Extension) testpki.Entry {
	return testpki.Entry{Serial: big.NewInt(serial), Reason: reason, Time: time.Now().Add(-time.Hour), Extensions: exts}
}

const removeFromCRL = 8

func TestPartitionScope(t *testing.T) {
	l := newRFCLab(t)
	ca := l.ca("Partitioned CA", 0)
	a, b := "http://crl.test/a.crl", "http://crl.test/b.crl"
	inB := l.ee(ca, 0x22, testpki.CertDPs(testpki.DP{FullName: testpki.Names{URIs: []string{b}}}))
	noDP := l.ee(ca, 0x23)
	// Partition A lists 0x22, but 0x22 belongs to partition B.
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), Entries: []testpki.Entry{rev(0x22, 1)},
		Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{FullName: testpki.Names{URIs: []string{a}}})}})
	l.want("partition not covering the certificate", inB, revocation.CantUse)
	l.want("partition, certificate without DP", noDP, revocation.CantUse)
	if st, _ := l.e.chk.CheckID(context.Background(), nil, mustHash(t, inB), []byte{0x22}); st != revocation.CantUse {
		t.Errorf("ISVALID without the certificate, partitioned CRL: %v, want can't use", st)
	}
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1),
		Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{FullName: testpki.Names{URIs: []string{b}}})}})
	l.want("its own partition", inB, revocation.Valid)
	// onlyContains*.
	user := l.ca("User-only CA", 0)
	caCert := user.Issue(testpki.Template{Subject: testpki.Name("sub", "", ""), IsCA: true, KeyType: testpki.ECDSA})
	l.mustLoad(&testpki.CRLSpec{Issuer: user, Number: big.NewInt(1), Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{OnlyUser: true})}})
	l.want("onlyContainsUserCerts, end entity", l.ee(user, 5), revocation.Valid)
	l.want("onlyContainsUserCerts, CA", caCert, revocation.CantUse)
	attr := l.ca("Attribute CA", 0)
	l.mustLoad(&testpki.CRLSpec{Issuer: attr, Number: big.NewInt(1), Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{OnlyAttr: true})}})
	l.want("onlyContainsAttributeCerts", l.ee(attr, 5), revocation.CantUse)
}

func TestReasonCoverage(t *testing.T) {
	l := newRFCLab(t)
	ca := l.ca("Reasons CA", 0)
	c := l.ee(ca, 7)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1),
		Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{OnlySomeReasons: []int{1, 2}})}})
	l.want("reasons partially covered", c, revocation.CantUse)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), Entries: []testpki.Entry{rev(8, 6)},
		Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{OnlySomeReasons: []int{0, 3, 4, 5, 6, 7, 8}})}})
	l.want("all reasons covered by two CRLs", c, revocation.Valid)
	l.want("on hold on the other-reasons CRL", l.ee(ca, 8), revocation.Revoked)
	// A distribution point limited to some reasons covers only those.
	ca2 := l.ca("Reasons CA 2", 0)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca2, Number: big.NewInt(1)})
	part := l.ee(ca2, 9, testpki.CertDPs(testpki.DP{FullName: testpki.Names{URIs: []string{"http://x.test/c"}}, Reasons: []int{1}}))
	l.want("DP reasons limit the cover", part, revocation.CantUse)
}

func TestDeltaCRLs(t *testing.T) {
	l := newRFCLab(t)
	ca := l.ca("Delta CA", 0)
	fresh := testpki.Freshest(testpki.DP{FullName: testpki.Names{URIs: []string{"http://unreachable.invalid/delta.crl"}}})
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(5), Entries: []testpki.Entry{rev(2, 1), rev(4, 6)}, Extensions: []testpki.Extension{fresh}})
	onlyDelta, held, clean := l.ee(ca, 3), l.ee(ca, 4), l.ee(ca, 6)
	l.want("delta not obtainable", clean, revocation.CantUse)
	l.want("delta not obtainable, revoked on the base", l.ee(ca, 2), revocation.Revoked)
	if st, _ := l.e.chk.CheckID(context.Background(), nil, mustHash(t, clean), []byte{6}); st != revocation.CantUse {
		t.Errorf("ISVALID without the certificate, base naming deltas: %v, want can't use", st)
	}
	// A delta for a base newer than the cached one does not apply.
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(8), Extensions: []testpki.Extension{testpki.DeltaIndicator(7)}})
	l.want("delta with a base number newer than the cached base", clean, revocation.CantUse)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(9), Entries: []testpki.Entry{rev(3, 1), rev(4, removeFromCRL)},
		Extensions: []testpki.Extension{testpki.DeltaIndicator(5)}})
	l.want("revoked on the delta only", onlyDelta, revocation.Revoked)
	l.want("hold removed on the delta", held, revocation.Valid)
	l.want("on neither", clean, revocation.Valid)
	// A certificate naming deltas, whose base names none.
	ca2 := l.ca("Delta CA 2", 0)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca2, Number: big.NewInt(1)})
	named := l.ee(ca2, 1, testpki.CertFreshest(testpki.DP{FullName: testpki.Names{URIs: []string{"http://unreachable.invalid/d2.crl"}}}))
	l.want("certificate names a delta that cannot be had", named, revocation.CantUse)
	l.want("certificate without freshestCRL", l.ee(ca2, 2), revocation.Valid)
	// A delta alone is no base.
	ca3 := l.ca("Delta CA 3", 0)
	l.mustLoad(&testpki.CRLSpec{Issuer: ca3, Number: big.NewInt(3), Extensions: []testpki.Extension{testpki.DeltaIndicator(2)}})
	l.want("delta without base", l.ee(ca3, 1), revocation.DontKnow)
	// Malformed deltas are refused.
	if err := l.load(&testpki.CRLSpec{Issuer: ca3, Extensions: []testpki.Extension{testpki.DeltaIndicator(2)}}); gpgerr.CodeOf(err) != gpgerr.ErrInvCRL {
		t.Errorf("delta without a CRL number: %v", err)
	}
}

func TestSeparateCRLSignerRevoked(t *testing.T) {
	l := newRFCLab(t)
	name := testpki.Name("Split CA", "", "")
	ca := l.root.Issue(testpki.Template{Subject: name, IsCA: true, KeyType: testpki.ECDSA, KeyUsage: x509.KeyUsageCertSign})
	signer := l.root.Issue(testpki.Template{Subject: name, KeyType: testpki.ECDSA, KeyUsage: x509.KeyUsageCRLSign})
	l.e.certs.Add(ca.Cert, certstore.Extra)
	l.e.certs.Add(signer.Cert, certstore.Extra)
	l.mustLoad(&testpki.CRLSpec{Issuer: signer, Number: big.NewInt(1)})
	c := l.ee(ca, 1)
	h := mustHash(t, c)
	if st, _ := l.e.chk.CheckID(context.Background(), nil, h, []byte{1}); st != revocation.Valid {
		t.Fatalf("signer not revoked: %v", st)
	}
	l.mustLoad(&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(2), Entries: []testpki.Entry{{Serial: signer.Cert.SerialNumber, Reason: 1, Time: l.now.Add(-time.Hour)}}})
	if st, _ := l.e.chk.CheckID(context.Background(), nil, h, []byte{1}); st != revocation.Revoked {
		t.Errorf("revoked CRL signer: %v, want revoked", st)
	}
	l.want("revoked CRL signer (certificate known)", c, revocation.Revoked)
}

// A separate CRL signer whose own CRL is not cached: its issuer's CRL
// is fetched from the signer's distribution point before the signer is
// trusted, and a signer revoked there revokes what the CRL speaks for.
func TestSeparateCRLSignerFetched(t *testing.T) {
	for _, tc := range []struct {
		name         string
		serve        bool // the signer's issuer CRL is served (else 404)
		revokeSigner bool
		want         revocation.Status
	}{
		{"signer's CRL fetched, signer not revoked", true, false, revocation.Valid},
		{"signer's CRL fetched, signer revoked", true, true, revocation.Revoked},
		{"signer's CRL not obtainable", false, false, revocation.CantUse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(time.Now().UnixNano())
			l := newRFCLabWith(t, revocation.Config{Now: func() time.Time { return time.Unix(0, clock.Load()) }})
			signerCA := l.ca("Signer Issuing CA", 0)
			var body atomic.Pointer[[]byte]
			fetched, asked := atomic.Int32{}, atomic.Int32{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/signer-ca.crl" {
					asked.Add(1)
				}
				if b := body.Load(); b != nil && r.URL.Path == "/signer-ca.crl" {
					fetched.Add(1)
					w.Write(*b)
					return
				}
				http.NotFound(w, r)
			}))
			defer srv.Close()
			name := testpki.Name("Fetched Split CA", "", "")
			ca := l.root.Issue(testpki.Template{Subject: name, IsCA: true, KeyType: testpki.ECDSA, KeyUsage: x509.KeyUsageCertSign})
			signer := signerCA.Issue(testpki.Template{Subject: name, KeyType: testpki.ECDSA, KeyUsage: x509.KeyUsageCRLSign,
				ExtraExtensions: []pkix.Extension{testpki.CertDPs(testpki.DP{FullName: testpki.Names{URIs: []string{srv.URL + "/signer-ca.crl"}}})}})
			l.e.certs.Add(ca.Cert, certstore.Extra)
			l.e.certs.Add(signer.Cert, certstore.Extra)
			l.mustLoad(&testpki.CRLSpec{Issuer: signer, Number: big.NewInt(1)})
			if tc.serve {
				spec := &testpki.CRLSpec{Issuer: signerCA, Number: big.NewInt(1), ThisUpdate: l.now.Add(-time.Hour), NextUpdate: l.now.Add(time.Hour)}
				if tc.revokeSigner {
					spec.Entries = []testpki.Entry{{Serial: signer.Cert.SerialNumber, Reason: 1, Time: l.now.Add(-time.Hour)}}
				}
				b := spec.Build()
				body.Store(&b)
			}
			l.want(tc.name, l.ee(ca, 1), tc.want)
			if tc.serve && fetched.Load() == 0 {
				t.Error("the signer's issuer CRL was not fetched")
			}
			if tc.serve {
				return
			}
			// A failed fetch is not tried again for a minute: the
			// checks meanwhile answer at once.
			n := asked.Load()
			if n == 0 {
				t.Fatal("the signer's issuer CRL was not asked for")
			}
			clock.Add(int64(30 * time.Second))
			l.want("again within the minute", l.ee(ca, 2), revocation.CantUse)
			if got := asked.Load(); got != n {
				t.Errorf("asked again within the minute: %d requests, want %d", got, n)
			}
			clock.Add(int64(31 * time.Second))
			l.want("again after the minute", l.ee(ca, 3), revocation.CantUse)
			if got := asked.Load(); got == n {
				t.Error("not asked again after the minute")
			}
		})
	}
}

func TestIndirectCRL(t *testing.T) {
	l := newRFCLab(t)
	x := l.ca("Indirect X", 0)
	y := l.ca("Indirect Y", 0)
	viaX := func(serial int64) *testpki.Cert {
		return l.ee(y, serial, testpki.CertDPs(testpki.DP{CRLIssuer: testpki.Names{DNs: [][]byte{x.Cert.RawSubject}}}))
	}
	entries := []testpki.Entry{
		rev(1, 1),
		rev(2, 1, testpki.CertificateIssuer(y.Cert.RawSubject)),
		rev(3, 1), // still Y: carried over
		rev(4, 1, testpki.CertificateIssuer(x.Cert.RawSubject)),
		rev(5, 1), // X again
	}
	// certificateIssuer entries in a CRL that is not indirect: refused.
	if err := l.load(&testpki.CRLSpec{Issuer: x, Number: big.NewInt(1), Entries: entries}); gpgerr.CodeOf(err) != gpgerr.ErrInvCRL {
		t.Errorf("certificateIssuer in a direct CRL: %v", err)
	}
	l.want("cRLIssuer naming a CA without an indirect CRL", viaX(9), revocation.DontKnow)
	l.mustLoad(&testpki.CRLSpec{Issuer: x, Number: big.NewInt(2), Entries: entries,
		Extensions: []testpki.Extension{testpki.IDP(testpki.IDPSpec{Indirect: true})}})
	l.want("Y serial 2 (certificateIssuer)", viaX(2), revocation.Revoked)
	l.want("Y serial 3 (certificateIssuer carried over)", viaX(3), revocation.Revoked)
	l.want("Y serial 1 (listed for X only)", viaX(1), revocation.Valid)
	l.want("Y serial 5 (listed for X only)", viaX(5), revocation.Valid)
	l.want("X serial 5", l.ee(x, 5), revocation.Revoked)
	l.want("X serial 3 (listed for Y only)", l.ee(x, 3), revocation.Valid)
	// The indirect CRL's signer X is checked: revoke X on the root CRL.
	l.mustLoad(&testpki.CRLSpec{Issuer: l.root, Number: big.NewInt(2), Entries: []testpki.Entry{{Serial: x.Cert.SerialNumber, Reason: 1, Time: l.now.Add(-time.Hour)}}})
	l.want("indirect CRL signed by a revoked CA", viaX(1), revocation.Revoked)
	// A direct CRL named as cRLIssuer is out of scope.
	z := l.ca("Direct Z", 0)
	l.mustLoad(&testpki.CRLSpec{Issuer: z, Number: big.NewInt(1)})
	viaZ := l.ee(y, 11, testpki.CertDPs(testpki.DP{CRLIssuer: testpki.Names{DNs: [][]byte{z.Cert.RawSubject}}}))
	l.want("cRLIssuer naming a direct CRL", viaZ, revocation.CantUse)
}

// targetAsker answers SENDCERT with the certificate being checked.
type targetAsker struct{ target *testpki.Cert }

func (a *targetAsker) SendTarget(context.Context) ([]byte, error)                  { return a.target.DER(), nil }
func (a *targetAsker) SendCert(context.Context, string) ([]byte, error)            { return nil, nil }
func (a *targetAsker) SendCertSKI(context.Context, []byte, string) ([]byte, error) { return nil, nil }
func (a *targetAsker) IsTrusted(context.Context, string) bool                      { return true }

// ISVALID fetches the delta CRL the cached base names (freshestCRL) and
// applies it; a delta that cannot be fetched leaves "can't tell".
func TestDeltaFetchedFromBaseFreshest(t *testing.T) {
	l := newRFCLab(t)
	ca := l.ca("Fetched Delta CA", 0)
	var delta atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := delta.Load(); d != nil && r.URL.Path == "/delta.crl" {
			w.Write(*d)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	fresh := testpki.Freshest(testpki.DP{FullName: testpki.Names{URIs: []string{srv.URL + "/delta.crl"}}})
	l.mustLoad(&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(5), Extensions: []testpki.Extension{fresh}})
	revoked, clean := l.ee(ca, 3), l.ee(ca, 6)
	check := func(c *testpki.Cert) revocation.Status {
		t.Helper()
		sn := c.Cert.SerialNumber.Bytes()
		st, err := l.e.chk.CheckID(context.Background(), &revocation.Request{Asker: &targetAsker{c}}, mustHash(t, c), sn)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := check(clean); st != revocation.CantUse {
		t.Errorf("delta not obtainable (404): %v, want can't use", st)
	}
	d := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), ThisUpdate: l.now.Add(-time.Minute), NextUpdate: l.now.Add(time.Hour),
		Entries: []testpki.Entry{rev(3, 1)}, Extensions: []testpki.Extension{testpki.DeltaIndicator(5)}}).Build()
	delta.Store(&d)
	if st := check(revoked); st != revocation.Revoked {
		t.Errorf("revoked on the fetched delta: %v, want revoked", st)
	}
	if st := check(clean); st != revocation.Valid {
		t.Errorf("on neither, delta fetched: %v, want valid", st)
	}
}
