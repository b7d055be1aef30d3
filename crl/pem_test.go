package crl_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// pemLines base64-encodes der in lines of width characters.
func pemLines(typ string, der []byte, width int, eol string) string {
	enc := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	b.WriteString("-----BEGIN " + typ + "-----" + eol)
	for len(enc) > width {
		b.WriteString(enc[:width] + eol)
		enc = enc[width:]
	}
	b.WriteString(enc + eol + "-----END " + typ + "-----" + eol)
	return b.String()
}

// TestPEMStreaming: the streaming PEM reader accepts what encoding/pem
// accepts for CRLs (text and other blocks before, CRLF, headers, any line
// width, the "CRL" label) and refuses broken blocks with BER errors.
func TestPEMStreaming(t *testing.T) {
	ca := newCA(testpki.ECDSA)
	der := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(3), Entries: entries(40)}).Build()
	cert := pemLines("CERTIFICATE", ca.DER(), 64, "\n")
	ok := []struct{ name, in string }{
		{"plain", pemLines("X509 CRL", der, 64, "\n")},
		{"crlf", pemLines("X509 CRL", der, 64, "\r\n")},
		{"one-line", pemLines("X509 CRL", der, 1<<20, "\n")},
		{"width-76", pemLines("X509 CRL", der, 76, "\n")},
		{"label-CRL", pemLines("CRL", der, 64, "\n")},
		{"text-before", "Certificate Revocation List (CRL):\n    Version 2 (0x1)\n\tööö\n" + pemLines("X509 CRL", der, 64, "\n") + "trailing text\n"},
		{"cert-before", cert + pemLines("X509 CRL", der, 64, "\n")},
		{"headers", strings.Replace(pemLines("X509 CRL", der, 64, "\n"), "-----\n", "-----\nProc-Type: 4,CRL\nX: y\n\n", 1)},
		{"no-final-newline", strings.TrimSuffix(pemLines("X509 CRL", der, 64, "\n"), "\n")},
		{"long-text-line", strings.Repeat("x", 300<<10) + "\n" + pemLines("X509 CRL", der, 64, "\n")},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			if blk, _ := pem.Decode([]byte(tc.in)); blk == nil && !strings.Contains(tc.name, "before") {
				t.Fatal("test input is not PEM")
			}
			info, err := crl.Parse(strings.NewReader(tc.in), crl.Limits{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if info.Entries != 40 || info.Verify(ca.Cert.PublicKey) != nil {
				t.Fatalf("entries %d, verify %v", info.Entries, info.Verify(ca.Cert.PublicKey))
			}
		})
	}
	good := pemLines("X509 CRL", der, 64, "\n")
	inner := base64.StdEncoding.EncodeToString(append(append([]byte(nil), der...), 0))
	bad := []struct {
		name string
		in   string
		code gpgerr.Code
	}{
		{"end-mismatch", strings.Replace(good, "END X509 CRL", "END CERTIFICATE", 1), gpgerr.ErrBadBER},
		{"no-end", good[:strings.Index(good, "-----END")], gpgerr.ErrBadBER},
		{"cut-in-body", good[:len(good)/2], gpgerr.ErrBadBER},
		{"bad-base64", strings.Replace(good, good[30:34], "*!*!", 1), gpgerr.ErrBadBER},
		{"only-cert", cert, gpgerr.ErrBadBER},
		{"binary", "\x1f\x8b\x08\x00garbage", gpgerr.ErrBadBER},
		{"nul-in-text", "hello\x00world\n" + good, gpgerr.ErrBadBER},
		{"trailing-der", "-----BEGIN X509 CRL-----\n" + inner + "\n-----END X509 CRL-----\n", gpgerr.ErrInvCRL},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crl.Parse(strings.NewReader(tc.in), crl.Limits{}, nil)
			if c := gpgerr.CodeOf(err); c != tc.code {
				t.Fatalf("code %d (%v), want %d", c, err, tc.code)
			}
		})
	}
	// The size cap applies to text before the block as well.
	_, err := crl.Parse(io.MultiReader(strings.NewReader("text\n"), endless("more text\n")), crl.Limits{MaxBytes: 100 << 10}, nil)
	if gpgerr.CodeOf(err) != gpgerr.ErrTooLarge {
		t.Fatalf("endless text, small cap: %v", err)
	}
	// Endless text or blanks stop after 1 MiB or 64 KiB.
	_, err = crl.Parse(endless("more text\n"), crl.Limits{}, nil)
	if gpgerr.CodeOf(err) != gpgerr.ErrBadBER || !strings.Contains(err.Error(), "first 1048576 bytes") {
		t.Fatalf("endless text: %v", err)
	}
	_, err = crl.Parse(io.MultiReader(strings.NewReader("-----BEGIN X509 CRL-----\nMIIB"), endless("  \r\n")), crl.Limits{}, nil)
	if gpgerr.CodeOf(err) != gpgerr.ErrBadBER || !strings.Contains(err.Error(), "blank bytes") {
		t.Fatalf("endless blanks: %v", err)
	}
}

// FuzzPEM: whatever the streaming reader accepts, encoding/pem decodes to
// the same CRL (the reader is never more lenient).
func FuzzPEM(f *testing.F) {
	ca := newCA(testpki.ECDSA)
	der := (&testpki.CRLSpec{Issuer: ca, Entries: entries(2)}).Build()
	f.Add([]byte(pemLines("X509 CRL", der, 64, "\n")))
	f.Add([]byte("x\n" + pemLines("CRL", der, 20, "\r\n")))
	f.Add([]byte(pemLines("CERTIFICATE", ca.DER(), 64, "\n") + pemLines("X509 CRL", der, 64, "\n")))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || in[0] == 0x30 {
			return
		}
		var got [][]byte
		info, err := crl.Parse(bytes.NewReader(in), crl.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}, func(e *crl.Entry) error {
			got = append(got, append([]byte(nil), e.Serial...))
			return nil
		})
		if err != nil {
			if gpgerr.CodeOf(err) == gpgerr.ErrGeneral {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		rest := in
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				t.Fatalf("accepted input encoding/pem finds no CRL in: %q", in)
			}
			if blk.Type != "X509 CRL" && blk.Type != "CRL" {
				continue
			}
			std, err := crl.Parse(bytes.NewReader(blk.Bytes), crl.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}, nil)
			if err != nil || std.Entries != info.Entries || std.Size != info.Size {
				t.Fatalf("encoding/pem's block parses to %+v, %v; ours %+v", std, err, info)
			}
			return
		}
	})
}

// endless repeats s for ever.
func endless(s string) io.Reader { return &repeater{s: []byte(s)} }

type repeater struct {
	s   []byte
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// memCases are the hostile or large inputs whose parse must not grow the
// process by more than memLimit. Each returns the input (built before the
// measurement starts) and the expected error code (0 = parses).
var memCases = map[string]func() (io.Reader, gpgerr.Code){
	// An endless body that is not DER: read whole before (683 MiB).
	"endless-text": func() (io.Reader, gpgerr.Code) { return endless("not a CRL at all\n"), gpgerr.ErrBadBER },
	// A BEGIN line, then endless white space inside the block.
	"endless-pem-body": func() (io.Reader, gpgerr.Code) {
		return io.MultiReader(strings.NewReader("-----BEGIN X509 CRL-----\n"), endless("    \n")), gpgerr.ErrBadBER
	},
	// LOADCRL /dev/urandom: refused at the first control byte.
	"urandom": func() (io.Reader, gpgerr.Code) {
		f, err := os.Open("/dev/urandom")
		if err != nil {
			panic(err)
		}
		return io.MultiReader(strings.NewReader("A"), f), gpgerr.ErrBadBER
	},
	// A real 300k-entry CRL (11 MB DER, 15 MB PEM), held by the test; the
	// parse itself must not copy it.
	"large-pem-crl": func() (io.Reader, gpgerr.Code) {
		ca := newCA(testpki.ECDSA)
		es := make([]testpki.Entry, 300_000)
		for i := range es {
			es[i] = testpki.Entry{Serial: big.NewInt(int64(0x100000 + i)), Reason: -1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		}
		return bytes.NewReader(testpki.PEM((&testpki.CRLSpec{Issuer: ca, Entries: es}).Build())), 0
	},
}

const memLimit = 64 << 20

// TestParseMemoryBounded runs each memCases input in a fresh process and
// checks its peak resident size (VmHWM) grew by less than 64 MB during the
// parse (issue 13: ~1 MB on the wire cost ~1.2 GB before).
func TestParseMemoryBounded(t *testing.T) {
	if os.Getenv("CRL_MEM_CASE") != "" {
		t.Skip("child")
	}
	for name := range memCases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestParseMemoryChild$", "-test.v")
			cmd.Env = append(os.Environ(), "CRL_MEM_CASE="+name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			var grew int64
			found, limit := false, int64(memLimit)
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "hwm-growth "); ok {
					grew, _ = strconv.ParseInt(v, 10, 64)
					found = true
				}
				if v, ok := strings.CutPrefix(sc.Text(), "input-size "); ok {
					// A held input must not be copied: the old
					// whole-body decoding grew by about twice its size.
					size, _ := strconv.ParseInt(v, 10, 64)
					limit = size / 4
				}
			}
			if !found {
				t.Fatalf("no measurement in\n%s", out)
			}
			t.Logf("%s: VmHWM grew by %d kB", name, grew>>10)
			if grew > limit {
				t.Errorf("%s: VmHWM grew by %d kB (limit %d kB)", name, grew>>10, limit>>10)
			}
		})
	}
}

// TestParseMemoryChild is the measured process of TestParseMemoryBounded.
func TestParseMemoryChild(t *testing.T) {
	name := os.Getenv("CRL_MEM_CASE")
	if name == "" {
		t.Skip("run by TestParseMemoryBounded")
	}
	in, want := memCases[name]()
	// Give back what building the input cost and restart the peak from
	// here (clear_refs 5 resets VmHWM to the current RSS).
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatal(err)
	}
	before := vmHWM(t)
	_, err := crl.Parse(in, crl.Limits{}, func(*crl.Entry) error { return nil })
	after := vmHWM(t)
	if c := gpgerr.CodeOf(err); c != want {
		t.Fatalf("code %d (%v), want %d", c, err, want)
	}
	fmt.Printf("hwm-growth %d\n", after-before)
	if r, ok := in.(*bytes.Reader); ok {
		fmt.Printf("input-size %d\n", r.Size())
	}
}

// vmHWM returns the process's peak resident set size in bytes.
func vmHWM(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
