package certid_test

import (
	"encoding/asn1"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestOpenSSLHashes compares SubjectHash/SubjectHashOld with
// `openssl x509 -subject_hash -subject_hash_old` on names that exercise
// the canonical encoding: case, white space, string types, multi-valued
// RDNs, non-text attributes.
func TestOpenSSLHashes(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not installed (required in CI)")
		}
		t.Skip("openssl not installed")
	}
	extra := []struct {
		name string
		rdns [][]av
	}{
		{"case-and-space", [][]av{{{Type: oidC, Value: ps("NL")}}, {{Type: oidO, Value: utf8("  Dutch   GRID\tCA  ")}}, {{Type: oidCN, Value: ps("UPPER lower")}}}},
		{"multi-sorted", [][]av{{{Type: oidOU, Value: utf8("Zed")}, {Type: oidCN, Value: utf8("Alpha")}, {Type: oidO, Value: ps("ORG")}}}},
		{"empty", nil},
		{"numeric", [][]av{{{Type: oidCN, Value: ps("Numeric CA")}}, {{Type: oidSerial, Value: testpki.String(asn1.TagNumericString, []byte("12 34"))}}}},
		{"utf8-nonascii", [][]av{{{Type: oidCN, Value: utf8("  Ärger   ÜBER CA ")}}}},
	}
	type tc struct {
		name string
		raw  []byte
	}
	var cases []tc
	for _, c := range nameCases {
		cases = append(cases, tc{c.name, testpki.RawName(c.rdns...)})
	}
	for _, c := range extra {
		cases = append(cases, tc{c.name, testpki.RawName(c.rdns...)})
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cert := testpki.NewRoot(testpki.Template{RawSubject: c.raw, KeyType: testpki.ECDSA})
			f := testpki.WriteFile(dir, c.name+".pem", cert.PEM())
			out, err := exec.Command(openssl, "x509", "-noout", "-subject_hash", "-subject_hash_old", "-in", f).Output()
			if err != nil {
				t.Fatalf("openssl: %v", err)
			}
			want := strings.Fields(string(out))
			got, err := certid.SubjectHash(cert.Cert.RawSubject)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != 2 || got != want[0] || certid.SubjectHashOld(cert.Cert.RawSubject) != want[1] {
				t.Errorf("ours %s %s, openssl %q", got, certid.SubjectHashOld(cert.Cert.RawSubject), want)
			}
		})
	}
}
