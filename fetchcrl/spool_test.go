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
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// endless yields c forever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// TestSpoolStops: bodies that cannot be a CRL stop early, others are
// spooled whole with fetch-crl's checksum, and nothing is left on disk.
func TestSpoolStops(t *testing.T) {
	der := []byte{0x30, 0x84, 0x00, 0x00, 0x00, 0x10}
	cases := []struct {
		name string
		r    io.Reader
		want error
		size int64
	}{
		{"endless-text", endless('a'), errNoCRL, 0},
		{"endless-zeros", endless(0), errNoCRL, 0},
		{"endless-der", io.MultiReader(bytes.NewReader(der), endless(1)), fetch.ErrTooLarge, 0},
		{"der-declares-too-much", bytes.NewReader([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0}), fetch.ErrTooLarge, 0},
		{"pem-late", io.MultiReader(strings.NewReader(strings.Repeat("x", 2<<20)), strings.NewReader("\n"+pemBegin)), errNoCRL, 0},
		{"pem-after-text", io.MultiReader(strings.NewReader(strings.Repeat("x\r\n", 1000)), strings.NewReader(pemBegin), io.LimitReader(endless('A'), 3<<20)), nil, 3000 + int64(len(pemBegin)) + 3<<20},
		{"small-garbage", strings.NewReader("<html>not found</html>"), nil, 22},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := spool(dir, c.r)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if err == nil {
				defer b.close()
				if b.size != c.size {
					t.Errorf("size %d, want %d", b.size, c.size)
				}
				all, _ := io.ReadAll(b.reader())
				var sum uint32
				for _, c := range all {
					sum += uint32(c)
				}
				if b.perlSum() != sum%65535 {
					t.Errorf("sum %d, want %d", b.perlSum(), sum%65535)
				}
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("left in the directory: %v", left)
			}
		})
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
