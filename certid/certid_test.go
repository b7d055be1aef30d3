package certid_test

import (
	"bufio"
	"bytes"
	"encoding/asn1"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/golden"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

var (
	oidCN     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidC      = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidO      = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU     = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidL      = asn1.ObjectIdentifier{2, 5, 4, 7}
	oidSerial = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidTitle  = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidGN     = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidEmail  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC     = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidUID    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

type av = testpki.AttributeValue

func ps(s string) asn1.RawValue   { return testpki.String(asn1.TagPrintableString, []byte(s)) }
func utf8(s string) asn1.RawValue { return testpki.String(asn1.TagUTF8String, []byte(s)) }
func ia5(s string) asn1.RawValue  { return testpki.String(asn1.TagIA5String, []byte(s)) }

func bmp(s string) asn1.RawValue {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return testpki.String(30, b)
}

// nameCases are distinguished names with the features that make libksba's
// rendering differ from other RFC 2253 printers.
var nameCases = []struct {
	name   string
	rdns   [][]av
	serial *big.Int
}{
	{"plain", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidO, Value: ps("Dirmngr Research")}}, {{Type: oidCN, Value: ps("Test Root CA")}}}, big.NewInt(0x1000)},
	{"utf8", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidCN, Value: utf8("Jürgen Größe CA ✓")}}}, big.NewInt(0x80AB)},
	{"multivalued", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidCN, Value: utf8("Test")}, {Type: oidOU, Value: utf8("Res")}}}, big.NewInt(0xFF)},
	{"email", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidCN, Value: utf8("Mail CA")}}, {{Type: oidEmail, Value: ia5("ca@example.org")}}}, big.NewInt(1)},
	{"serialnumber-title-gn", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidCN, Value: utf8("T3 CA")}}, {{Type: oidSerial, Value: ps("42")}}, {{Type: oidTitle, Value: utf8("Boss")}}, {{Type: oidGN, Value: utf8("Eva")}}}, new(big.Int).SetBytes([]byte{0x80, 0, 0, 0, 0, 0, 0, 1})},
	{"specials", [][]av{{{Type: oidO, Value: utf8("a,b+c\"d\\e<f>g;h")}}, {{Type: oidOU, Value: utf8("#hash")}}, {{Type: oidCN, Value: utf8(" lead and trail ")}}}, big.NewInt(0x7F)},
	{"bmp", [][]av{{{Type: oidC, Value: ps("DE")}}, {{Type: oidCN, Value: bmp("BMP Name")}}}, big.NewInt(2)},
	{"dc-uid", [][]av{{{Type: oidDC, Value: ia5("org")}}, {{Type: oidDC, Value: ia5("example")}}, {{Type: oidUID, Value: utf8("jdoe")}}, {{Type: oidL, Value: utf8("Köln")}}}, big.NewInt(3)},
	{"teletex-latin1", [][]av{{{Type: oidC, Value: ps("FR")}}, {{Type: oidCN, Value: testpki.String(asn1.TagT61String, []byte("Caf\xe9"))}}}, big.NewInt(4)},
	{"control-chars", [][]av{{{Type: oidCN, Value: utf8("line\nbreak\x7f")}}}, big.NewInt(5)},
}

type rendered struct{ dn, serial string }

func renderAll(t *testing.T) (map[string]rendered, map[string]*testpki.Cert) {
	t.Helper()
	out := map[string]rendered{}
	certs := map[string]*testpki.Cert{}
	for _, c := range nameCases {
		raw := testpki.RawName(c.rdns...)
		cert := testpki.NewRoot(testpki.Template{RawSubject: raw, Serial: c.serial, KeyType: testpki.ECDSA})
		dn, err := certid.DN(cert.Cert.RawIssuer)
		if err != nil {
			t.Fatalf("%s: DN: %v", c.name, err)
		}
		sn, err := certid.SerialHex(cert.Cert)
		if err != nil {
			t.Fatalf("%s: serial: %v", c.name, err)
		}
		out[c.name] = rendered{dn, sn}
		certs[c.name] = cert
	}
	return out, certs
}

// TestDNGolden compares our rendering with testdata/dn.golden, which was
// produced by gpgsm (libksba) for the same names.
func TestDNGolden(t *testing.T) {
	got, _ := renderAll(t)
	path := filepath.Join("testdata", "dn.golden")
	if golden.Update() {
		var b bytes.Buffer
		for _, c := range nameCases {
			b.WriteString(c.name + "\t" + got[c.name].serial + "\t" + strconv.Quote(got[c.name].dn) + "\n")
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(f)) {
		parts := strings.SplitN(strings.TrimRight(line, "\n"), "\t", 3)
		want, err := strconv.Unquote(parts[2])
		if err != nil {
			t.Fatalf("golden line %q: %v", line, err)
		}
		g := got[parts[0]]
		if g.dn != want || g.serial != parts[1] {
			t.Errorf("%s: got %q serial %s, want %q serial %s", parts[0], g.dn, g.serial, want, parts[1])
		}
		n++
	}
	if n != len(nameCases) {
		t.Errorf("golden has %d cases, table %d", n, len(nameCases))
	}
}

// TestMatchesGpgsm imports the certificates into a scratch gpgsm keybox and
// compares gpgsm's own issuer string and serial (from --with-colons) with
// ours, byte for byte.
func TestMatchesGpgsm(t *testing.T) {
	gpgsm, err := exec.LookPath("gpgsm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("gpgsm not installed (required in CI)")
		}
		t.Skip("gpgsm not installed")
	}
	got, certs := renderAll(t)
	home, err := os.MkdirTemp("/tmp", "certid-gpgsm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(home)
	var all []string
	for _, c := range nameCases {
		all = append(all, testpki.WriteFile(home, c.name+".der", certs[c.name].DER()))
	}
	cmd := exec.Command(gpgsm, append([]string{"--homedir", home, "--batch", "--disable-dirmngr", "--import"}, all...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gpgsm --import: %v\n%s", err, out)
	}
	out, err := exec.Command(gpgsm, "--homedir", home, "--with-colons", "--list-keys").Output()
	if err != nil {
		t.Fatalf("gpgsm --list-keys: %v", err)
	}
	fromGpgsm := map[string]rendered{} // keyed by serial+issuer
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if f[0] != "crt" || len(f) < 10 {
			continue
		}
		issuer := colonUnescape(f[9])
		fromGpgsm[f[7]+"/"+issuer] = rendered{issuer, f[7]}
	}
	for _, c := range nameCases {
		g := got[c.name]
		if _, ok := fromGpgsm[g.serial+"/"+g.dn]; !ok {
			t.Errorf("%s: ours %q serial %s not among gpgsm's: %q", c.name, g.dn, g.serial, fromGpgsm)
		}
	}
	if len(fromGpgsm) != len(nameCases) {
		t.Errorf("gpgsm listed %d certificates, want %d", len(fromGpgsm), len(nameCases))
	}
}

// colonUnescape undoes gpgsm's --with-colons escaping (\xHH).
func colonUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestIDAndHash(t *testing.T) {
	// The reference issuer hash from GnuPG's own session logs.
	if h := certid.Hash("CN=Test Root CA,O=Dirmngr Research,C=DE"); h != "FFFB5A4A55F394FCB58CA797FF066E8F892C3917" {
		t.Errorf("Hash = %s", h)
	}
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Test Root CA", "Dirmngr Research", "DE"), Serial: big.NewInt(0x1001), KeyType: testpki.ECDSA})
	id, err := certid.Of(ca.Cert)
	if err != nil || id != "FFFB5A4A55F394FCB58CA797FF066E8F892C3917.1001" {
		t.Errorf("Of = %q, %v", id, err)
	}
}

func TestDNErrors(t *testing.T) {
	for _, in := range [][]byte{nil, {0x30}, {0x30, 0x02, 0x31, 0x05}, {0x30, 0x03, 0x31, 0x01, 0x30}, {0x31, 0x00}} {
		if _, err := certid.DN(in); err == nil {
			t.Errorf("DN(%x): no error", in)
		}
	}
	if s, err := certid.DN([]byte{0x30, 0x00}); err != nil || s != "" {
		t.Errorf("empty name: %q %v", s, err)
	}
}

func FuzzDN(f *testing.F) {
	for _, c := range nameCases {
		f.Add(testpki.RawName(c.rdns...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := certid.DN(in)
		if err == nil && strings.ContainsAny(s, "\n\r") {
			t.Errorf("raw line break in DN %q", s)
		}
	})
}
