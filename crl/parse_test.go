package crl_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

func newCA(kt testpki.KeyType) *testpki.Cert {
	return testpki.NewRoot(testpki.Template{Subject: testpki.Name("CRL Test CA", "Dirmngr Research", "DE"), KeyType: kt})
}

func entries(n int) []testpki.Entry {
	var es []testpki.Entry
	for i := range n {
		es = append(es, testpki.Entry{Serial: big.NewInt(int64(0x1000 + i)), Reason: i%3 - 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	return es
}

// TestParseVerifyAlgorithms parses and verifies CRLs signed with every
// supported algorithm and compares the result with crypto/x509.
func TestParseVerifyAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		name string
		kt   testpki.KeyType
	}{{"rsa", testpki.RSA}, {"rsa-pss", testpki.RSAPSS}, {"ecdsa", testpki.ECDSA}, {"ed25519", testpki.Ed25519}} {
		t.Run(tc.name, func(t *testing.T) {
			ca := newCA(tc.kt)
			spec := &testpki.CRLSpec{Issuer: ca, Number: big.NewInt(7), NextUpdate: time.Now().Add(time.Hour), Entries: entries(5)}
			der := spec.Build()
			for _, in := range [][]byte{der, testpki.PEM(der)} {
				var got []string
				info, err := crl.Parse(bytes.NewReader(in), crl.Limits{}, func(e *crl.Entry) error {
					got = append(got, crl.SerialHex(e.Serial))
					return nil
				})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if err := info.Verify(ca.Cert.PublicKey); err != nil {
					t.Fatalf("Verify: %v", err)
				}
				std, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatalf("x509: %v", err)
				}
				if err := std.CheckSignatureFrom(ca.Cert); err != nil {
					t.Fatalf("x509 verify: %v", err)
				}
				if len(got) != len(std.RevokedCertificateEntries) || info.Entries != int64(len(got)) {
					t.Fatalf("entries %d, x509 %d", len(got), len(std.RevokedCertificateEntries))
				}
				for i, e := range std.RevokedCertificateEntries {
					if want := crl.SerialHex(e.SerialNumber.Bytes()); got[i] != want {
						t.Errorf("entry %d: %s want %s", i, got[i], want)
					}
				}
				if !info.ThisUpdate.Equal(std.ThisUpdate) || !info.NextUpdate.Equal(std.NextUpdate) {
					t.Errorf("times %v/%v, x509 %v/%v", info.ThisUpdate, info.NextUpdate, std.ThisUpdate, std.NextUpdate)
				}
				if info.NumberHex() != "07" || !bytes.Equal(info.AKIKeyID, ca.Cert.SubjectKeyId) {
					t.Errorf("number %s aki %x", info.NumberHex(), info.AKIKeyID)
				}
				if info.Issuer != "CN=CRL Test CA,O=Dirmngr Research,C=DE" {
					t.Errorf("issuer %q", info.Issuer)
				}
				other := newCA(testpki.ECDSA)
				if err := info.Verify(other.Cert.PublicKey); !errors.Is(err, gpgerr.ErrBadSignature) {
					t.Errorf("verify with wrong key: %v", err)
				}
			}
		})
	}
}

func TestReasons(t *testing.T) {
	ca := newCA(testpki.ECDSA)
	der := (&testpki.CRLSpec{Issuer: ca, Entries: []testpki.Entry{
		{Serial: big.NewInt(1), Reason: testpki.ReasonNone},
		{Serial: big.NewInt(2), Reason: testpki.ReasonKeyCompromise},
		{Serial: big.NewInt(3), Reason: testpki.ReasonCertificateHold},
		{RawSerial: []byte{0x00, 0x80}, Reason: testpki.ReasonSuperseded},
	}}).Build()
	var got []string
	_, err := crl.Parse(bytes.NewReader(der), crl.Limits{}, func(e *crl.Entry) error {
		got = append(got, crl.SerialHex(e.Serial)+":"+big.NewInt(int64(e.Reason)).Text(16))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"01:0", "02:2", "03:40", "0080:10"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %s, want %s", i, got[i], want[i])
		}
	}
}

// TestMalformed is the malformed-CRL corpus: every case must fail with the
// listed gpg-error code.
func TestMalformed(t *testing.T) {
	ca := newCA(testpki.ECDSA)
	good := (&testpki.CRLSpec{Issuer: ca, Entries: entries(3)}).Build()
	crit := testpki.Extension{ID: []int{1, 2, 3, 4}, Critical: true, Value: []byte{0x30, 0x00}}
	cases := []struct {
		name string
		in   []byte
		code gpgerr.Code
	}{
		{"empty", nil, gpgerr.ErrBadBER},
		{"garbage", []byte("hello world"), gpgerr.ErrBadBER},
		{"truncated-1", good[:1], gpgerr.ErrBadBER},
		{"truncated-half", good[:len(good)/2], gpgerr.ErrBadBER},
		{"truncated-last", good[:len(good)-1], gpgerr.ErrBadBER},
		{"trailing", append(append([]byte(nil), good...), 0x00), gpgerr.ErrInvCRL},
		{"hostile-length", []byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00}, gpgerr.ErrTooLarge},
		{"indefinite", []byte{0x30, 0x80, 0x00, 0x00}, gpgerr.ErrBadBER},
		{"long-length-field", []byte{0x30, 0x88, 1, 2, 3, 4, 5, 6, 7, 8}, gpgerr.ErrBadBER},
		{"unknown-critical-entry-ext", (&testpki.CRLSpec{Issuer: ca, Entries: []testpki.Entry{{Serial: big.NewInt(1), Reason: -1, Extensions: []testpki.Extension{{ID: []int{1, 2, 3}, Critical: true, Value: []byte{5, 0}}}}}}).Build(), gpgerr.ErrUnknownCritExtn},
		{"duplicate-entry-ext", (&testpki.CRLSpec{Issuer: ca, Entries: []testpki.Entry{{Serial: big.NewInt(1), Reason: 1, Extensions: []testpki.Extension{{ID: testpki.OIDReasonCode, Value: []byte{0x0a, 1, 1}}}}}}).Build(), gpgerr.ErrInvCRL},
		{"duplicate-crl-ext", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), Extensions: []testpki.Extension{{ID: testpki.OIDCRLNumber, Value: []byte{2, 1, 2}}}}).Build(), gpgerr.ErrInvCRL},
		{"version-3", bytes.Replace(good, []byte{0x02, 0x01, 0x01, 0x30}, []byte{0x02, 0x01, 0x02, 0x30}, 1), gpgerr.ErrUnsupportedCRLVersion},
		{"zero-serial-length", (&testpki.CRLSpec{Issuer: ca, Entries: []testpki.Entry{{RawSerial: []byte{}, Reason: -1}}}).Build(), gpgerr.ErrBadBER},
		{"pem-without-crl", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), gpgerr.ErrBadBER},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crl.Parse(bytes.NewReader(tc.in), crl.Limits{MaxBytes: 1 << 20}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if c := gpgerr.CodeOf(err); c != tc.code {
				t.Fatalf("code %d (%v), want %d", c, err, tc.code)
			}
		})
	}
	// Unknown critical CRL extensions parse but are reported.
	info, err := crl.Parse(bytes.NewReader((&testpki.CRLSpec{Issuer: ca, Extensions: []testpki.Extension{crit}}).Build()), crl.Limits{}, nil)
	if err != nil || len(info.UnknownCritical) != 1 || info.UnknownCritical[0] != "1.2.3.4" {
		t.Fatalf("unknown critical CRL extension: %v %v", info, err)
	}
	// Limits.
	if _, err := crl.Parse(bytes.NewReader(good), crl.Limits{MaxEntries: 2}, nil); !errors.Is(err, gpgerr.ErrTooLarge) {
		t.Errorf("entry cap: %v", err)
	}
	if _, err := crl.Parse(bytes.NewReader(good), crl.Limits{MaxBytes: 100}, nil); !errors.Is(err, gpgerr.ErrTooLarge) {
		t.Errorf("size cap: %v", err)
	}
	// A v1 CRL (no version, no extensions) parses.
	info, err = crl.Parse(bytes.NewReader((&testpki.CRLSpec{Issuer: ca, Version: 1, Entries: entries(2)}).Build()), crl.Limits{}, nil)
	if err != nil || info.Version != 1 || info.Entries != 2 {
		t.Fatalf("v1: %+v %v", info, err)
	}
	if err := info.Verify(ca.Cert.PublicKey); err != nil {
		t.Fatalf("v1 verify: %v", err)
	}
	// A bad signature parses and fails verification.
	info, err = crl.Parse(bytes.NewReader((&testpki.CRLSpec{Issuer: ca, BadSignature: true}).Build()), crl.Limits{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Verify(ca.Cert.PublicKey); !errors.Is(err, gpgerr.ErrBadSignature) {
		t.Fatalf("bad signature: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	ca := newCA(testpki.ECDSA)
	f.Add((&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), NextUpdate: time.Now(), Entries: entries(3)}).Build())
	f.Add((&testpki.CRLSpec{Issuer: ca, Version: 1}).Build())
	f.Add(testpki.PEM((&testpki.CRLSpec{Issuer: ca}).Build()))
	f.Fuzz(func(t *testing.T, in []byte) {
		n := int64(0)
		info, err := crl.Parse(bytes.NewReader(in), crl.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}, func(e *crl.Entry) error {
			n++
			if len(e.Serial) == 0 {
				t.Fatal("empty serial visited")
			}
			return nil
		})
		if err != nil {
			if gpgerr.CodeOf(err) == gpgerr.ErrGeneral {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if info.Entries != n {
			t.Fatalf("Entries %d, visited %d", info.Entries, n)
		}
		_ = info.Verify(ca.Cert.PublicKey)
	})
}
