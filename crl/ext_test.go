package crl_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// PKITS (public domain, see integration/testdata/pkits/README.md).
var pkitsDir = filepath.Join("..", "integration", "testdata", "pkits")

func readPKITS(t testing.TB, kind, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkitsDir, kind, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type seenEntry struct {
	serial, issuer string
	reason         crl.Reason
}

func parsePKITS(t *testing.T, name string) (*crl.Info, []seenEntry) {
	t.Helper()
	var got []seenEntry
	info, err := crl.Parse(bytes.NewReader(readPKITS(t, "crls", name)), crl.Limits{}, func(e *crl.Entry) error {
		got = append(got, seenEntry{crl.SerialHex(e.Serial), e.CertIssuer, e.Reason})
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return info, got
}

const pkitsO = "O=Test Certificates 2011,C=US"

func TestIDPFields(t *testing.T) {
	cases := []struct {
		crl          string
		full         []string // resolved directory names of the IDP's DP
		user, ca     bool
		attr, ind    bool
		reasons      crl.Reason
		unknownCrits int
	}{
		{crl: "distributionPoint1CACRL.crl", full: []string{"CN=CRL1 of distributionPoint1 CA,OU=distributionPoint1 CA," + pkitsO}, reasons: crl.AllReasons},
		{crl: "distributionPoint2CACRL.crl", full: []string{"CN=CRL1 of distributionPoint2 CA,OU=distributionPoint2 CA," + pkitsO}, reasons: crl.AllReasons},
		{crl: "onlyContainsUserCertsCACRL.crl", user: true, reasons: crl.AllReasons},
		{crl: "onlyContainsCACertsCACRL.crl", ca: true, reasons: crl.AllReasons},
		{crl: "onlyContainsAttributeCertsCACRL.crl", attr: true, reasons: crl.AllReasons},
		{crl: "onlySomeReasonsCA2CRL1.crl", reasons: crl.ReasonAffiliationChanged | crl.ReasonSuperseded},
		{crl: "onlySomeReasonsCA1compromiseCRL.crl", reasons: crl.ReasonKeyCompromise | crl.ReasonCACompromise},
		{crl: "indirectCRLCA1CRL.crl", ind: true, reasons: crl.AllReasons},
	}
	for _, tc := range cases {
		t.Run(tc.crl, func(t *testing.T) {
			info, _ := parsePKITS(t, tc.crl)
			p := info.IDP
			if p == nil || len(info.RawIDP) == 0 {
				t.Fatal("no IDP")
			}
			if len(info.UnknownCritical) != tc.unknownCrits {
				t.Errorf("unknown critical: %v", info.UnknownCritical)
			}
			if p.OnlyUser != tc.user || p.OnlyCA != tc.ca || p.OnlyAttribute != tc.attr || p.Indirect != tc.ind {
				t.Errorf("flags %+v", p)
			}
			if p.Reasons() != tc.reasons {
				t.Errorf("reasons %#x, want %#x", p.Reasons(), tc.reasons)
			}
			names, err := p.Name.Resolve(info.RawIssuer)
			if err != nil {
				t.Fatal(err)
			}
			var dns []string
			for _, n := range names {
				dns = append(dns, n.DN)
			}
			if len(tc.full) > 0 && (len(dns) != 1 || dns[0] != tc.full[0]) {
				t.Errorf("DP names %q, want %q", dns, tc.full)
			}
		})
	}
}

func TestDeltaAndFreshest(t *testing.T) {
	base, _ := parsePKITS(t, "deltaCRLCA1CRL.crl")
	if base.IsDelta() || len(base.Freshest) != 1 || base.Freshest[0].Name == nil ||
		base.Freshest[0].Name.FullName[0].DN != "CN=deltaCRL CA1,"+pkitsO {
		t.Fatalf("base: delta %v freshest %+v", base.IsDelta(), base.Freshest)
	}
	delta, entries := parsePKITS(t, "deltaCRLCA1deltaCRL.crl")
	if !delta.IsDelta() || delta.BaseNumberHex() != base.NumberHex() {
		t.Fatalf("delta base %q, base CRL number %q", delta.BaseNumberHex(), base.NumberHex())
	}
	if len(delta.UnknownCritical) != 0 {
		t.Errorf("unknown critical %v", delta.UnknownCritical)
	}
	want := map[string]crl.Reason{"03": crl.ReasonKeyCompromise, "04": crl.ReasonRemoveFromCRL, "05": crl.ReasonKeyCompromise, "06": crl.ReasonRemoveFromCRL}
	for _, e := range entries {
		if want[e.serial] != e.reason {
			t.Errorf("entry %s reason %#x, want %#x", e.serial, e.reason, want[e.serial])
		}
	}
}

// The certificateIssuer entry extension applies to the entries that
// follow it until the next one (RFC 5280 §5.3.3).
func TestCertificateIssuerCarriedOver(t *testing.T) {
	info, entries := parsePKITS(t, "indirectCRLCA5CRL.crl")
	if info.IDP == nil || !info.IDP.Indirect {
		t.Fatal("not an indirect CRL")
	}
	ca6, ca7 := "CN=indirectCRL CA6,"+pkitsO, "CN=indirectCRL CA7,"+pkitsO
	byIssuer := map[string][]string{}
	for _, e := range entries {
		byIssuer[e.issuer] = append(byIssuer[e.issuer], e.serial)
	}
	has := func(issuer, serial string) bool {
		for _, s := range byIssuer[issuer] {
			if s == serial {
				return true
			}
		}
		return false
	}
	// PKITS 4.14.31–34: 02 and 09 (carried over) under CA6, 07 only under
	// CA7, 0B back under the CRL issuer (CA5).
	for _, c := range []struct {
		issuer, serial string
		want           bool
	}{{ca6, "02", true}, {ca6, "09", true}, {ca6, "07", false}, {ca7, "07", true}, {"", "0B", true}, {ca6, "0B", false}} {
		if has(c.issuer, c.serial) != c.want {
			t.Errorf("serial %s under %q: %v, want %v (entries %v)", c.serial, c.issuer, !c.want, c.want, byIssuer)
		}
	}
	if info.IndirectEntries == 0 || info.IndirectEntries >= info.Entries {
		t.Errorf("indirect entries %d of %d", info.IndirectEntries, info.Entries)
	}
}

func TestExtensionParsersRefuse(t *testing.T) {
	cases := []struct {
		name  string
		parse func([]byte) error
		in    []byte
	}{
		{"idp-empty", idp, nil},
		{"idp-trailing", idp, []byte{0x30, 0x00, 0x00}},
		{"idp-flag-not-true", idp, []byte{0x30, 0x03, 0x81, 0x01, 0x01}},
		{"idp-two-only-flags", idp, []byte{0x30, 0x06, 0x81, 0x01, 0xff, 0x82, 0x01, 0xff}},
		{"idp-bad-reasons", idp, []byte{0x30, 0x03, 0x83, 0x01, 0x01}},
		{"idp-empty-fullname", idp, []byte{0x30, 0x04, 0xa0, 0x02, 0xa0, 0x00}},
		{"dp-empty", dps, []byte{0x30, 0x00}},
		{"dp-nothing", dps, []byte{0x30, 0x02, 0x30, 0x00}},
		{"dp-uri-constructed", dps, []byte{0x30, 0x08, 0x30, 0x06, 0xa0, 0x04, 0xa0, 0x02, 0xa6, 0x00}},
		{"delta-negative", delta, []byte{0x02, 0x01, 0xff}},
		{"delta-trailing", delta, []byte{0x02, 0x01, 0x01, 0x00}},
		{"certissuer-uri-only", certIssuer, []byte{0x30, 0x03, 0x86, 0x01, 'x'}},
		{"certissuer-bad-dn", certIssuer, []byte{0x30, 0x04, 0xa4, 0x02, 0x31, 0x00}},
	}
	for _, tc := range cases {
		err := tc.parse(tc.in)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if c := gpgerr.CodeOf(err); c != gpgerr.ErrBadBER && c != gpgerr.ErrInvCRL {
			t.Errorf("%s: code %v (%v)", tc.name, c, err)
		}
	}
	// An unknown critical entry extension is "Unknown critical extension".
	_, err := crl.Parse(bytes.NewReader(readPKITS(t, "crls", "UnknownCRLEntryExtensionCACRL.crl")), crl.Limits{}, nil)
	if !errors.Is(err, gpgerr.ErrUnknownCritExtn) {
		t.Errorf("unknown critical entry extension: %v", err)
	}
}

func idp(b []byte) error   { _, err := crl.ParseIDP(b); return err }
func dps(b []byte) error   { _, err := crl.ParseDistributionPoints(b); return err }
func delta(b []byte) error { _, err := crl.ParseDeltaCRLIndicator(b); return err }
func certIssuer(b []byte) error {
	_, _, err := crl.ParseCertificateIssuer(b)
	return err
}
