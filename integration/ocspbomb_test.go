package integration

import (
	"encoding/asn1"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"crypto/x509/pkix"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestOCSPResponseBombs (threats-and-tests §4.C 21): a responder signs
// good answers padded by a response extension to exactly 65536 bytes
// (GnuPG's MAX_RESPONSE_SIZE: accepted), to 65537 bytes and with a 16 MiB
// extension (refused: "Provided object is too large", nothing cached, the daemon still
// answers). 10⁴ SingleResponses take more than 64 KiB too, so the same
// cap refuses them before any parsing.
func TestOCSPResponseBombs(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("OCSP Bomb CA", "", "")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	respond := func(serialReq []byte, pad int) ([]byte, error) {
		req, err := xocsp.ParseRequest(serialReq)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		tmpl := xocsp.Response{Status: xocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}
		if pad > 0 {
			tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 21}, Value: make([]byte, pad)}}
		}
		return xocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
	}
	// sized returns a response of exactly size bytes (the padding is
	// adjusted until the DER lengths settle).
	sized := func(reqDER []byte, size int) ([]byte, error) {
		pad := size - 1000
		for range 5 {
			resp, err := respond(reqDER, pad)
			if err != nil || len(resp) == size {
				return resp, err
			}
			pad += size - len(resp)
		}
		return respond(reqDER, pad)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<14))
		var resp []byte
		var err error
		switch r.URL.Path {
		case "/plain":
			resp, err = respond(body, 0)
		case "/64k":
			resp, err = sized(body, 65536)
		case "/64k+1":
			resp, err = sized(body, 65537)
		case "/16m":
			resp, err = respond(body, 16<<20)
		}
		if err != nil || resp == nil {
			http.Error(w, "responder failed", 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})}
	go hs.Serve(ln)
	defer hs.Close()

	home := newHome(t)
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("allow-ocsp\n"), 0o600)
	os.MkdirAll(filepath.Join(home, "extra-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "extra-certs"), "root.crt", ca.DER())
	startDaemon(t, bin(t, "dirmngr"), home)
	client := bin(t, "dirmngr-client")
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/plain", 0, "certificate is valid"},
		{"/64k", 0, "certificate is valid"},
		{"/64k+1", 2, "certificate check failed: Provided object is too large"},
		{"/16m", 2, "certificate check failed: Provided object is too large"},
		{"/64k+1", 2, "certificate check failed: Provided object is too large"}, // not cached
		{"/plain", 0, "certificate is valid"},
	} {
		leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf "+tc.path, "", ""), OCSPURLs: []string{base + tc.path}})
		r := runClientProg(t, client, home, leaf.DER(), "-v", "--ocsp")
		if r.code != tc.code || !strings.Contains(r.out, tc.want) {
			t.Errorf("%s: exit %d (want %d), output %q lacks %q", tc.path, r.code, tc.code, r.out, tc.want)
		}
	}
}
