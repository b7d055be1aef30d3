package fetchcrl

import (
	"bytes"
	"encoding/pem"
	"io"
	"regexp"
	"strings"
	"testing"
)

// fetchCRLPEM is fetch-crl 3's own recognition of a PEM download, which
// findPEM, pemText and pemToDER reproduce as streams.
var fetchCRLPEM = regexp.MustCompile(`(?sm)(^-----BEGIN X509 CRL-----\n[^-]+\n-----END X509 CRL-----$)`)

// wantPEM is what fetch-crl makes of data: the match and its DER (nil
// when encoding/pem does not decode it).
func wantPEM(data []byte) (match []byte, der []byte, ok bool) {
	norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	m := fetchCRLPEM.FindSubmatch(norm)
	if m == nil {
		return nil, nil, false
	}
	blk, _ := pem.Decode(append(append([]byte(nil), m[1]...), '\n'))
	if blk == nil {
		return m[1], nil, true
	}
	return m[1], blk.Bytes, true
}

// checkPEM compares the streaming recognition of data with the regexp's.
func checkPEM(t *testing.T, data []byte) {
	t.Helper()
	match, der, want := wantPEM(data)
	span, ok, err := findPEM(bytes.NewReader(data))
	if err != nil || ok != want {
		t.Fatalf("%q: found %v (%v), regexp %v", data, ok, err, want)
	}
	if !ok {
		return
	}
	text, err := io.ReadAll(newCRLFReader(io.NewSectionReader(bytes.NewReader(data), span.off, span.n)))
	if err != nil || !bytes.Equal(text, match) {
		t.Fatalf("%q: text %q (%v), regexp %q", data, text, err, match)
	}
	var got bytes.Buffer
	derr := pemToDER(bytes.NewReader(text), &got)
	if (derr == nil) != (der != nil) || der != nil && !bytes.Equal(got.Bytes(), der) {
		t.Fatalf("%q: DER %q (%v), encoding/pem %q", data, got.Bytes(), derr, der)
	}
}

const b64 = "MIIBAjCB6wIBATANBgkqhkiG9w0BAQsFADAQMQ4wDAYDVQQDDAVUZXN0IBcNMjYx\nMTI0MTIwMDAwWhcNMjYxMTI2MTIwMDAwWjAUMBICAQEXDTI2MTEyNDEyMDAwMFo=\n"

// TestFindPEMMatchesFetchCRL: tricky downloads recognised as fetch-crl's
// regexp and encoding/pem do.
func TestFindPEMMatchesFetchCRL(t *testing.T) {
	blk := "-----BEGIN X509 CRL-----\n" + b64 + "-----END X509 CRL-----"
	cases := map[string]string{
		"plain":              blk + "\n",
		"no-final-newline":   blk,
		"crlf":               strings.ReplaceAll(blk+"\n", "\n", "\r\n"),
		"lone-cr":            "-----BEGIN X509 CRL-----\n" + b64[:10] + "\r" + b64[10:] + "-----END X509 CRL-----\n",
		"cr-cr-lf":           strings.ReplaceAll(blk, "\n", "\r\r\n"),
		"text-before":        "Some text\r\nmore: text\n" + blk + "\ntrailer\n",
		"not-at-line-start":  "x" + blk + "\n",
		"second-block":       "-----BEGIN X509 CRL-----\nabc\n-----BEGIN X509 CRL-----\n" + b64 + "-----END X509 CRL-----\n",
		"bad-end-then-good":  "-----BEGIN X509 CRL-----\nabc\n-----END X509 CRL----- x\n" + blk,
		"end-not-eol":        blk + "x\n",
		"empty-body":         "-----BEGIN X509 CRL-----\n\n-----END X509 CRL-----\n",
		"newline-body":       "-----BEGIN X509 CRL-----\n\n\n-----END X509 CRL-----\n",
		"body-without-nl":    "-----BEGIN X509 CRL-----\nabc-----END X509 CRL-----\n",
		"dash-in-body":       "-----BEGIN X509 CRL-----\nab-c\n-----END X509 CRL-----\n",
		"headers":            "-----BEGIN X509 CRL-----\nKey: value\nOther: x\n\n" + b64 + "-----END X509 CRL-----\n",
		"colon-later":        "-----BEGIN X509 CRL-----\n" + b64 + "a:b\n-----END X509 CRL-----\n",
		"spaces-tabs":        "-----BEGIN X509 CRL-----\n " + strings.ReplaceAll(b64, "\n", " \t\n") + "-----END X509 CRL-----\n",
		"bad-base64":         "-----BEGIN X509 CRL-----\nMII*\n-----END X509 CRL-----\n",
		"short-quantum":      "-----BEGIN X509 CRL-----\nMIIB\nMI\n-----END X509 CRL-----\n",
		"data-after-padding": "-----BEGIN X509 CRL-----\nMQ==\nMIIB\n-----END X509 CRL-----\n",
		"other-type":         "-----BEGIN CRL-----\n" + b64 + "-----END CRL-----\n",
		"begin-with-space":   "-----BEGIN X509 CRL----- \n" + b64 + "-----END X509 CRL-----\n",
		"dashes-then-begin":  "-----B\n-----\n" + blk,
		"der":                "\x30\x03\x02\x01\x01",
		"empty":              "",
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkPEM(t, []byte(data)) })
	}
}

// FuzzFindPEM compares the streaming recognition with fetch-crl's regexp
// and encoding/pem on any input.
func FuzzFindPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN X509 CRL-----\n" + b64 + "-----END X509 CRL-----\n"))
	f.Add([]byte("x\r\n-----BEGIN X509 CRL-----\r\nK: v\r\n\r\nMQ==\r\n-----END X509 CRL-----"))
	f.Fuzz(func(t *testing.T, data []byte) { checkPEM(t, data) })
}

// TestWritePEM: DER is written as encoding/pem writes it.
func TestWritePEM(t *testing.T) {
	for _, n := range []int{1, 47, 48, 49, 96, 1000} {
		der := bytes.Repeat([]byte{0x30, 0x81, 0xff}, n)[:n]
		var got bytes.Buffer
		if err := writePEM(&got, bytes.NewReader(der)); err != nil {
			t.Fatal(err)
		}
		want := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%d bytes: %q, want %q", n, got.Bytes(), want)
		}
	}
}
