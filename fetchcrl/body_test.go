package fetchcrl

import (
	"bytes"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

type endlessReader struct{ s []byte }

func (e endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.s[i%len(e.s)]
	}
	return len(p), nil
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestReadCRLBody (issue 13 item 1): a CRL is read whole and unchanged;
// a body that cannot be a CRL stops being read within about 1 MiB, however
// long it is, and is handed to verification as read; transport and size
// errors are returned.
func TestReadCRLBody(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Body CA", "", "")})
	der := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), Entries: []testpki.Entry{{Serial: big.NewInt(5), Reason: -1}, {Serial: big.NewInt(6), Reason: -1}}}).Build()
	pemText := append(testpki.PEM(der), "trailing words\n"...)
	for _, in := range [][]byte{der, pemText, (&testpki.CRLSpec{Issuer: ca}).Build()} {
		got, err := readCRLBody(bytes.NewReader(in), 1<<20)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("CRL read as %d bytes (%v), want %d unchanged", len(got), err, len(in))
		}
	}
	for name, r := range map[string]io.Reader{
		"endless text":          endlessReader{[]byte("no CRL here\n")},
		"endless gzip":          io.MultiReader(strings.NewReader("\x1f\x8b\x08\x00"), endlessReader{[]byte{0}}),
		"endless blanks in PEM": io.MultiReader(strings.NewReader("-----BEGIN X509 CRL-----\n"), endlessReader{[]byte(" \n")}),
		"endless DER garbage":   io.MultiReader(bytes.NewReader([]byte{0x30, 0x84, 0x01, 0, 0, 0, 0x30, 0x84, 0x01, 0, 0, 0}), endlessReader{[]byte{0xff}}),
	} {
		got, err := readCRLBody(r, 512<<20)
		if err != nil || len(got) > 2<<20 {
			t.Errorf("%s: read %d bytes (%v), want at most 2 MiB and no error", name, len(got), err)
		}
	}
	if _, err := readCRLBody(bytes.NewReader(der), int64(len(der)-1)); err == nil {
		t.Error("over the cap: no error")
	}
	var te *fetch.TransportError
	if _, err := readCRLBody(failingReader{&fetch.TransportError{URL: "u", Cause: "x"}}, 1<<20); !errors.As(err, &te) {
		t.Errorf("transport error: %v", err)
	}
}
