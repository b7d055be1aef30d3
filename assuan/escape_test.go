package assuan_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
)

func TestEscapeData(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"plain text", "plain text"},
		{"100%", "100%25"},
		{"a\r\nb", "a%0D%0Ab"},
		{"\x00\xff", "\x00\xff"},
	} {
		got := string(assuan.EscapeData([]byte(tc.in)))
		if got != tc.want {
			t.Errorf("EscapeData(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := string(assuan.UnescapeData([]byte(got))); back != tc.in {
			t.Errorf("UnescapeData(%q) = %q", got, back)
		}
	}
	// Decoding is lenient about bad escapes.
	for _, tc := range []struct{ in, want string }{{"%zz", "%zz"}, {"%4", "%4"}, {"%41%42", "AB"}} {
		if got := string(assuan.UnescapeData([]byte(tc.in))); got != tc.want {
			t.Errorf("UnescapeData(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeStatusAndPlus(t *testing.T) {
	if got := assuan.EscapeStatus("a\nb\rc"); strings.ContainsAny(got, "\r\n") || got != `a\nb\rc` {
		t.Errorf("EscapeStatus = %q", got)
	}
	for _, tc := range []struct{ in, want string }{{"a+b", "a b"}, {"%2B", "+"}, {"x%20y", "x y"}, {"/tmp/no+such%2Bfile.crl", "/tmp/no such+file.crl"}, {"plain", "plain"}, {"%41%4a%", "AJ%"}, {"%zz", "%zz"}} {
		if got := assuan.UnescapePlus(tc.in); got != tc.want {
			t.Errorf("UnescapePlus(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWireValues(t *testing.T) {
	for _, tc := range []struct {
		code gpgerr.Code
		want uint32
		text string
	}{
		{gpgerr.ErrGeneral, 167772161, "General error"},
		{gpgerr.ErrNotFound, 167772187, "Not found"},
		{gpgerr.ErrCertRevoked, 167772254, "Certificate revoked"},
		{gpgerr.ErrNoCRLKnown, 167772255, "No CRL known"},
		{gpgerr.ErrAssUnknownCmd, 167772435, "Unknown IPC command"},
		{gpgerr.ErrENOENT, 167805009, "No such file or directory"},
	} {
		if got := gpgerr.WireValue(gpgerr.SourceDirmngr, tc.code); got != tc.want {
			t.Errorf("%v: wire %d, want %d", tc.code, got, tc.want)
		}
		if src, c := gpgerr.ParseWireValue(tc.want); src != gpgerr.SourceDirmngr || c != tc.code {
			t.Errorf("gpgerr.ParseWireValue(%d) = %v %v", tc.want, src, c)
		}
		if tc.code.Error() != tc.text {
			t.Errorf("%d text %q, want %q", tc.code, tc.code.Error(), tc.text)
		}
	}
	if gpgerr.WireValue(gpgerr.SourceKSBA, gpgerr.ErrBadBER) != 150995078 {
		t.Error("KSBA BER error")
	}
}

// FuzzEscape: decode(encode(x)) == x and encoded data never has CR/LF.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "%", "a\r\nb", "%0A", "\x00\xff%25"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		enc := assuan.EscapeData(in)
		if bytes.ContainsAny(enc, "\r\n") {
			t.Fatalf("raw CR/LF in %q", enc)
		}
		if dec := assuan.UnescapeData(enc); !bytes.Equal(dec, in) {
			t.Fatalf("round trip %q -> %q -> %q", in, enc, dec)
		}
		if s := assuan.EscapeStatus(string(in)); strings.ContainsAny(s, "\r\n") {
			t.Fatalf("raw CR/LF in status %q", s)
		}
	})
}

// FuzzLineReader feeds arbitrary client bytes to a session: the server must
// not panic, and every line it emits must be at most 1000 bytes with no raw
// CR.
func FuzzLineReader(f *testing.F) {
	for _, s := range []string{"NOP\n", "ECHO a%b\r\nBIG\n", "ASK\nD x\nEND\n", strings.Repeat("A", 1200) + "\n", "OPTION --known = 1\n\x00\xff\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		srv := testServer()
		a, b := net.Pipe()
		done := make(chan struct{})
		go func() { srv.ServeConn(context.Background(), a, nil); a.Close(); close(done) }()
		var out bytes.Buffer
		readDone := make(chan struct{})
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := b.Read(buf)
				out.Write(buf[:n])
				if err != nil {
					close(readDone)
					return
				}
			}
		}()
		b.SetWriteDeadline(time.Now().Add(2 * time.Second))
		b.Write(in)
		b.Write([]byte("\nBYE\n"))
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		b.Close()
		<-readDone
		for _, line := range bytes.Split(out.Bytes(), []byte("\n")) {
			if len(line) > 1000 {
				t.Fatalf("line of %d bytes", len(line))
			}
			if bytes.IndexByte(line, '\r') >= 0 {
				t.Fatalf("raw CR in %q", line)
			}
		}
	})
}
