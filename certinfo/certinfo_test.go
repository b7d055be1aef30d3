package certinfo_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certinfo"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// PKITS (public domain, see integration/testdata/pkits/README.md).
func pkits(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "integration", "testdata", "pkits", "certs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const pkitsO = "O=Test Certificates 2011,C=US"

// Every PKITS certificate is read, including those crypto/x509 refuses,
// and agrees with crypto/x509 where it parses.
func TestAllPKITSCertificates(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "integration", "testdata", "pkits", "certs", "*.crt"))
	if err != nil || len(files) == 0 {
		t.Fatal("no PKITS certificates", err)
	}
	refused := 0
	for _, f := range files {
		der, _ := os.ReadFile(f)
		in, err := certinfo.Parse(der)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if in.Cert == nil {
			refused++
			continue
		}
		h, _ := certid.IssuerHash(in.Cert)
		sn, _ := certid.RawSerial(in.Cert)
		if h != in.IssuerHash || string(sn) != string(in.Serial) || in.IsCA != in.Cert.IsCA ||
			in.KeyUsage != in.Cert.KeyUsage || len(certinfo.URIs(in.DistributionPoints)) != len(in.Cert.CRLDistributionPoints) {
			t.Errorf("%s: differs from crypto/x509", filepath.Base(f))
		}
	}
	if refused < 4 {
		t.Errorf("crypto/x509 refused %d PKITS certificates; the test expects the nameRelativeToCRLIssuer ones among them", refused)
	}
}

func TestRefusedByGoStillRead(t *testing.T) {
	for _, tc := range []struct {
		file, issuer string
	}{
		{"ValiddistributionPointTest4EE.crt", "OU=distributionPoint1 CA," + pkitsO},
		{"ValiddistributionPointTest5EE.crt", "OU=distributionPoint2 CA," + pkitsO},
		{"InvaliddistributionPointTest6EE.crt", "OU=distributionPoint2 CA," + pkitsO},
		{"ValidcRLIssuerTest29EE.crt", "OU=indirectCRL CA3," + pkitsO},
	} {
		in, err := certinfo.Parse(pkits(t, tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if in.Cert != nil || in.ParseErr == nil {
			t.Logf("%s: crypto/x509 accepts it now", tc.file)
		}
		if in.Issuer != tc.issuer || in.IssuerHash != certid.Hash(tc.issuer) || len(in.Serial) == 0 {
			t.Errorf("%s: issuer %q serial %X", tc.file, in.Issuer, in.Serial)
		}
		if len(in.DistributionPoints) == 0 || in.DistributionPoints[0].Name == nil {
			t.Fatalf("%s: no distribution point", tc.file)
		}
		if len(in.AKIKeyID) == 0 {
			t.Errorf("%s: no AKI", tc.file)
		}
	}
	in, _ := certinfo.Parse(pkits(t, "ValidcRLIssuerTest29EE.crt"))
	dp := in.DistributionPoints[0]
	if dp.Name.RelativeRDN == nil || len(dp.CRLIssuer) != 1 || dp.CRLIssuer[0].DN != "OU=indirectCRL CA3 cRLIssuer,"+pkitsO {
		t.Errorf("relative DP with cRLIssuer: %+v", dp)
	}
	in, _ = certinfo.Parse(pkits(t, "InvalidNegativeSerialNumberTest15EE.crt"))
	if in == nil || len(in.Serial) == 0 || in.Serial[0]&0x80 == 0 {
		t.Errorf("negative serial: %+v", in)
	}
	in, _ = certinfo.Parse(pkits(t, "ValiddeltaCRLTest2EE.crt"))
	if in == nil || len(in.Freshest) != 1 {
		t.Errorf("freshestCRL: %+v", in)
	}
}

func TestMalformed(t *testing.T) {
	good := pkits(t, "ValiddistributionPointTest4EE.crt")
	for name, der := range map[string][]byte{
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0),
		"garbage":   []byte("hello"),
	} {
		if _, err := certinfo.Parse(der); gpgerr.CodeOf(err) != gpgerr.ErrBadBER {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := certinfo.Parse(nil); gpgerr.CodeOf(err) != gpgerr.ErrMissingCert {
		t.Errorf("empty: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"ValiddistributionPointTest4EE.crt", "ValidcRLIssuerTest29EE.crt", "ValiddeltaCRLTest2EE.crt", "TrustAnchorRootCertificate.crt"} {
		f.Add(pkits(f, n))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := certinfo.Parse(in)
		if err != nil {
			if c := gpgerr.CodeOf(err); c != gpgerr.ErrBadBER && c != gpgerr.ErrMissingCert {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if info.IssuerHash != certid.Hash(info.Issuer) || len(info.Serial) == 0 {
			t.Fatalf("inconsistent %+v", info)
		}
	})
}
