package crl_test

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"os"
	"path/filepath"
	"testing"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// pkitsExtensions returns the extnValues with oid found in the PKITS
// CRLs (CRL extensions, or entry extensions when entry is set), as fuzz
// seeds.
func pkitsExtensions(f *testing.F, oid asn1.ObjectIdentifier, entry bool) [][]byte {
	files, _ := filepath.Glob(filepath.Join(pkitsDir, "crls", "*.crl"))
	var out [][]byte
	for _, name := range files {
		der, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			continue
		}
		exts := rl.Extensions
		if entry {
			exts = nil
			for _, e := range rl.RevokedCertificateEntries {
				exts = append(exts, e.Extensions...)
			}
		}
		for _, x := range exts {
			if x.Id.Equal(oid) {
				out = append(out, x.Value)
			}
		}
	}
	if len(out) == 0 {
		f.Fatalf("no PKITS seeds for %v", oid)
	}
	return out
}

// checkClassified fails on an error that carries no gpg-error code.
func checkClassified(t *testing.T, err error) {
	if err != nil && gpgerr.CodeOf(err) != gpgerr.ErrBadBER && gpgerr.CodeOf(err) != gpgerr.ErrInvCRL {
		t.Fatalf("unclassified error: %v", err)
	}
}

func FuzzParseIDP(f *testing.F) {
	for _, s := range pkitsExtensions(f, asn1.ObjectIdentifier{2, 5, 29, 28}, false) {
		f.Add(s)
	}
	issuer := []byte{0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 'U', 'S'}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := crl.ParseIDP(in)
		checkClassified(t, err)
		if err != nil {
			return
		}
		if p.Reasons() == 0 {
			t.Fatal("IDP covers no reasons")
		}
		names, err := p.Name.Resolve(issuer)
		checkClassified(t, err)
		if p.Name != nil && err == nil && len(names) == 0 {
			t.Fatal("a DP name resolved to nothing")
		}
	})
}

func FuzzParseDistributionPoints(f *testing.F) {
	for _, s := range pkitsExtensions(f, asn1.ObjectIdentifier{2, 5, 29, 46}, false) {
		f.Add(s)
	}
	f.Add([]byte{0x30, 0x0a, 0x30, 0x08, 0xa0, 0x06, 0xa0, 0x04, 0x86, 0x02, 'h', ':'})
	f.Fuzz(func(t *testing.T, in []byte) {
		dps, err := crl.ParseDistributionPoints(in)
		checkClassified(t, err)
		for _, dp := range dps {
			if dp.Name == nil && dp.CRLIssuer == nil {
				t.Fatal("empty distribution point accepted")
			}
		}
	})
}

func FuzzParseCertificateIssuer(f *testing.F) {
	for _, s := range pkitsExtensions(f, asn1.ObjectIdentifier{2, 5, 29, 29}, true) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		dn, raw, err := crl.ParseCertificateIssuer(in)
		checkClassified(t, err)
		if err == nil && (dn == "" && len(raw) > 2 || !bytes.Contains(in, raw)) {
			t.Fatalf("certificateIssuer %q from %x", dn, raw)
		}
	})
}

func FuzzParseDeltaCRLIndicator(f *testing.F) {
	for _, s := range pkitsExtensions(f, asn1.ObjectIdentifier{2, 5, 29, 27}, false) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := crl.ParseDeltaCRLIndicator(in)
		checkClassified(t, err)
		if err == nil && n.Sign() < 0 {
			t.Fatal("negative base CRL number")
		}
	})
}
