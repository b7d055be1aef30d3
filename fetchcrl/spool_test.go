package fetchcrl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
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

// readSpool spools r and returns its bytes, checking the checksum and
// that nothing is left in the directory.
func readSpool(t *testing.T, r io.Reader, max int64) ([]byte, error) {
	t.Helper()
	dir := t.TempDir()
	b, err := spoolMax(dir, r, max)
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("left in the directory: %v", left)
	}
	if err != nil {
		return nil, err
	}
	defer b.close()
	all, _ := io.ReadAll(b.reader())
	var sum uint32
	for _, c := range all {
		sum += uint32(c)
	}
	if int64(len(all)) != b.size || b.perlSum() != sum%65535 {
		t.Errorf("size %d sum %d, want %d %d", b.size, b.perlSum(), len(all), sum%65535)
	}
	return all, nil
}

// TestSpool (issue 13 item 1): a CRL is spooled whole and unchanged; a
// body that cannot be a CRL stops being read within about 1 MiB, however
// long it is, and is handed to verification as read; transport and size
// errors are returned.
func TestSpool(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Body CA", "", "")})
	der := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(1), Entries: []testpki.Entry{{Serial: big.NewInt(5), Reason: -1}, {Serial: big.NewInt(6), Reason: -1}}}).Build()
	pemText := append(testpki.PEM(der), "trailing words\n"...)
	for _, in := range [][]byte{der, pemText, (&testpki.CRLSpec{Issuer: ca}).Build(), []byte("<html>not found</html>")} {
		got, err := readSpool(t, bytes.NewReader(in), 1<<20)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("CRL read as %d bytes (%v), want %d unchanged", len(got), err, len(in))
		}
	}
	for name, r := range map[string]io.Reader{
		"endless text":          endlessReader{[]byte("no CRL here\n")},
		"endless zeros":         endlessReader{[]byte{0}},
		"endless gzip":          io.MultiReader(strings.NewReader("\x1f\x8b\x08\x00"), endlessReader{[]byte{0}}),
		"endless blanks in PEM": io.MultiReader(strings.NewReader("-----BEGIN X509 CRL-----\n"), endlessReader{[]byte(" \n")}),
		"endless DER garbage":   io.MultiReader(bytes.NewReader([]byte{0x30, 0x84, 0x01, 0, 0, 0, 0x30, 0x84, 0x01, 0, 0, 0}), endlessReader{[]byte{0xff}}),
	} {
		got, err := readSpool(t, r, 512<<20)
		if err != nil || len(got) > 2<<20 {
			t.Errorf("%s: read %d bytes (%v), want at most 2 MiB and no error", name, len(got), err)
		}
	}
	if _, err := readSpool(t, bytes.NewReader(der), int64(len(der)-1)); !errors.Is(err, gpgerr.ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	if _, err := readSpool(t, bytes.NewReader([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0}), 512<<20); !errors.Is(err, gpgerr.ErrTooLarge) {
		t.Errorf("declared over the cap: %v", err)
	}
	var te *fetch.TransportError
	if _, err := readSpool(t, failingReader{&fetch.TransportError{URL: "u", Cause: "x"}}, 1<<20); !errors.As(err, &te) {
		t.Errorf("transport error: %v", err)
	}
}

// TestStateRoundTrip: b64data is read as a span of the state file and
// written back (or from a new download) byte for byte, whatever its
// length; other keys go through ConfigTiny as before.
func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("crl "), 100_000)) // > bufio's 64 KiB
	cases := map[string]struct{ file, b64 string }{
		"short":         {"[CA]\nalias=CA\nb64data=AAAA\nmtime=17\n", "AAAA"},
		"long":          {"[CA]\nalias=CA\nb64data=" + long + "\nmtime=17\n", long},
		"blanks-crlf":   {"[CA]\r\nalias = CA\r\n  b64data = " + long + " \r\nmtime=17\r\n", long},
		"last-line":     {"[CA]\nalias=CA\nmtime=17\nb64data=" + long, long},
		"other-section": {"[Other]\nb64data=BBBB\n[CA]\nalias=CA\nmtime=17\n", ""},
		"none":          {"[CA]\nalias=CA\nmtime=17\n", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, []byte(c.file), 0o644)
			st, data, err := readState(p, "CA")
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if data.file != nil {
					data.file.Close()
				}
			}()
			if st["alias"] != "CA" || st["mtime"] != "17" || st["b64data"] != "" {
				t.Errorf("state %v", st)
			}
			if data.present() != (c.b64 != "") {
				t.Fatalf("present %v, want %v", data.present(), c.b64 != "")
			}
			var out bytes.Buffer
			if err := writeState(&out, "CA", st, data); err != nil {
				t.Fatal(err)
			}
			want := "[CA]\nalias=CA\n"
			if c.b64 != "" {
				want += "b64data=" + c.b64 + "\n"
			}
			want += "mtime=17\n"
			if out.String() != want {
				t.Errorf("written %.200q, want %.200q", out.String(), want)
			}
			if c.b64 == "" {
				return
			}
			b, err := data.decode(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer b.close()
			got, _ := io.ReadAll(b.reader())
			if wantRaw, _ := base64.StdEncoding.DecodeString(c.b64); !bytes.Equal(got, wantRaw) {
				t.Errorf("decoded %d bytes, want %d", len(got), len(wantRaw))
			}
			out.Reset()
			writeState(&out, "CA", st, stateData{body: b})
			if !strings.Contains(out.String(), "\nb64data="+c.b64+"\n") {
				t.Errorf("re-encoded state differs")
			}
		})
	}
}

// BenchmarkDecodeLargePEM measures recognising, decoding and parsing a
// spooled PEM CRL of about 10 MB and writing its OpenSSL content.
func BenchmarkDecodeLargePEM(b *testing.B) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Bench CA", "Test", "NL")})
	now := time.Now()
	spec := &testpki.CRLSpec{Issuer: ca, ThisUpdate: now, NextUpdate: now.Add(time.Hour), Count: 200_000,
		Gen: func(i int) testpki.Entry {
			return testpki.Entry{Serial: big.NewInt(int64(i) + 1<<40), Time: now, Reason: 1}
		}}
	pemData := testpki.PEM(spec.Build())
	dir := b.TempDir()
	raw, err := spool(dir, bytes.NewReader(pemData))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.close()
	t := &taRun{s: &Settings{Output: dir}}
	defer t.closeSpools()
	b.SetBytes(int64(len(pemData)))
	b.ResetTimer()
	for range b.N {
		d := t.decode(raw)
		if d.info == nil {
			b.Fatalf("not decoded: %v", d.problems)
		}
		v := &verified{src: d}
		if err := v.writeOpenSSL(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
