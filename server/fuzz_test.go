package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/big"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/server"
	"github.com/dirmngr/dirmngr/services"
)

// fuzzBackend is the dispatcher's backend for FuzzDispatch: the real
// services on a temporary homedir with every network path off (HTTP and
// LDAP disabled, no OCSP), a cache holding one CRL, and no process
// control (KILLDIRMNGR and RELOADDIRMNGR have nothing to act on).
type fuzzBackend struct {
	srv  *server.Server
	logs *panicWatch
	crl  string // a CRL file LOADCRL may read
	cert []byte // a certificate of the CRL's issuer
	root []byte
	id   string // its <issuer hash>.<serial>
}

// panicWatch is a log handler that only notes a handler panic (the
// dispatcher logs "command handler panicked" and recovers).
type panicWatch struct{ seen atomic.Value }

func (p *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panicked") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "panic" {
				p.seen.Store(a.Value.String())
			}
			return true
		})
		if p.seen.Load() == nil {
			p.seen.Store(r.Message)
		}
	}
	return nil
}
func (p *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicWatch) WithGroup(string) slog.Handler      { return p }

var (
	backendOnce sync.Once
	backend     *fuzzBackend
	backendErr  error
)

func newFuzzBackend(t testing.TB) *fuzzBackend {
	backendOnce.Do(func() {
		home, err := os.MkdirTemp("", "dmfuzz")
		if err != nil {
			backendErr = err
			return
		}
		l, err := config.Load([]string{"--homedir", home, "--no-options", "--disable-http", "--disable-ldap"})
		if err != nil {
			backendErr = err
			return
		}
		logs := &panicWatch{}
		log := slog.New(logs)
		live, err := services.Open(l, false, log)
		if err != nil {
			backendErr = err
			return
		}
		root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Fuzz Root", "", "")})
		cert := root.Issue(testpki.Template{Subject: testpki.Name("fuzz", "", ""), Serial: big.NewInt(0x4711)})
		crlFile := testpki.WriteFile(home, "root.crl", (&testpki.CRLSpec{Issuer: root, Number: big.NewInt(1),
			NextUpdate: time.Now().Add(time.Hour), Entries: []testpki.Entry{{Serial: big.NewInt(0x4711), Reason: 1}}}).Build())
		id, err := certid.Of(cert.Cert)
		if err != nil {
			backendErr = err
			return
		}
		backend = &fuzzBackend{srv: server.New(server.Env{Homedir: home}, live, nil, log), logs: logs, crl: crlFile,
			cert: cert.DER(), root: root.DER(), id: id}
	})
	if backendErr != nil {
		t.Fatal(backendErr)
	}
	return backend
}

// session is a client stream that ends after the input (EOF).
type session struct {
	r io.Reader
	w bytes.Buffer
}

func (s *session) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *session) Write(p []byte) (int, error) { return s.w.Write(p) }

// sanitize keeps the fuzzer away from the machine: LOADCRL of a local file
// reads the backend's CRL file instead of whatever path the input names.
func (b *fuzzBackend) sanitize(in []byte) []byte {
	lines := bytes.Split(in, []byte("\n"))
	for i, l := range lines {
		f := bytes.Fields(l)
		if len(f) > 0 && bytes.EqualFold(f[0], []byte("LOADCRL")) && (len(f) < 2 || !bytes.Equal(f[1], []byte("--url"))) {
			lines[i] = []byte("LOADCRL " + b.crl)
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// dLines is data as an inquiry answer: escaped D lines of at most 900
// bytes, then END.
func dLines(data []byte) string {
	var b strings.Builder
	enc := string(assuan.EscapeData(data))
	for len(enc) > 0 {
		n := min(900, len(enc))
		for n < len(enc) && n > 2 && (enc[n-1] == '%' || enc[n-2] == '%') {
			n-- // do not cut an escape
		}
		b.WriteString("D " + enc[:n] + "\n")
		enc = enc[n:]
	}
	return b.String() + "END\n"
}

var replyLine = regexp.MustCompile(`^(OK( .*)?|ERR \d+ [^<]*<[^>]*>( - .*)?|S [A-Z_]+( .*)?|D .*|# .*|#|INQUIRE [A-Z_]+( .*)?|END)$`)

// FuzzDispatch runs arbitrary client streams through dirmngr's command
// dispatcher and handlers (threats-and-tests §4.H 48, 50): no panic, no
// hang, and every line sent is a well-formed Assuan line of at most 1000
// bytes with no raw CR.
func FuzzDispatch(f *testing.F) {
	b := newFuzzBackend(f)
	certD, rootD := dLines(b.cert), dLines(b.root)
	for _, s := range []string{
		"GETINFO version\nGETINFO pid\nGETINFO stats\nHELP\nNOP\n",
		"LOADCRL x\n" + rootD + "LISTCRLS\nISVALID " + b.id + "\nD 1\nEND\n",
		"CHECKCRL\n" + certD + rootD + "D 1\nEND\n",
		"CACHECERT\n" + rootD + "VALIDATE\n" + certD + rootD,
		"ISVALID " + b.id + " --only-ocsp\nCHECKOCSP\n" + certD,
		"OPTION http-crl=1\nOPTION force-crl-refresh\nOPTION audit-events=1\nLOADCRL --url http://127.0.0.1:1/x.crl\n",
		"LDAPSERVER 127.0.0.1:389:u:p:dc=x\nLDAPSERVER\nLOOKUP --url ldap://127.0.0.1:1/cn=x\nLOOKUP alice\n",
		"FLUSHCRLS\nKILLDIRMNGR\nRELOADDIRMNGR\nISVALID 0000.00\nISVALID %00\nCHECKCRL\nCAN\n",
		"ISVALID " + b.id + "\nD %ZZ%0\nD " + strings.Repeat("A", 990) + "\nEND\nD\nEND\n",
		"LOOKUP --single --cache-only 0x" + strings.Repeat("AB", 20) + "\nKS_GET x\nWKD_GET x\nDNS_CERT x\n",
		"isvalid\r\nchecKcrl\r\nD \x00\xff\r\nEND\r\n\x00\n" + strings.Repeat("X", 1200) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sess := &session{r: bytes.NewReader(b.sanitize(in))}
		done := make(chan error, 1)
		go func() { done <- b.srv.ServeConn(context.Background(), sess, 1, assuan.PeerCred{}) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("session did not end on EOF; input %q", in)
		}
		if p := b.logs.seen.Load(); p != nil {
			t.Fatalf("a handler panicked on %q: %v", in, p)
		}
		for _, line := range strings.Split(strings.TrimSuffix(sess.w.String(), "\n"), "\n") {
			if len(line) > 1000 || strings.ContainsRune(line, '\r') || !replyLine.MatchString(line) {
				t.Fatalf("bad line %q (%d bytes) for input %q", line, len(line), in)
			}
		}
	})
}

// TestFuzzBackendRuns: the seeds reach the handlers (not only "Unknown
// command"): a CRL is loaded, a revoked certificate found, data returned.
func TestFuzzBackendRuns(t *testing.T) {
	b := newFuzzBackend(t)
	rootD := dLines(b.root)
	sess := &session{r: bytes.NewReader(b.sanitize([]byte("LOADCRL x\n" + rootD + "ISVALID " + b.id + "\nD 1\nEND\nGETINFO version\n")))}
	if err := b.srv.ServeConn(context.Background(), sess, 1, assuan.PeerCred{}); err != nil {
		t.Fatal(err)
	}
	out := sess.w.String()
	for _, want := range []string{"ERR 167772254 Certificate revoked", "D 2.2.40\nOK"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
