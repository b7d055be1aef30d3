package fetch_test

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// headerLog records the credentials-bearing headers every request brought.
type headerLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *headerLog) add(r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, r.Header.Get("Authorization")+"|"+r.Header.Get("Cookie")+"|"+r.Header.Get("Proxy-Authorization"))
}

func (l *headerLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.seen, ",")
}

// TestHTTPSDowngrade (§4.D 23): a redirect from https to http is followed
// for CRLs (GET) and OCSP (POST), as GnuPG 2.2.40's dirmngr follows it:
// both are signed, so the transport adds no authenticity.
func TestHTTPSDowngrade(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("plain " + r.Method))
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/x", http.StatusFound)
	}))
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())
	f := fetch.New(fetch.Config{RootCAs: roots})
	resp, err := f.Get(context.Background(), tlsSrv.URL+"/ca.crl", nil)
	if err != nil {
		t.Fatalf("GET https→http: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "plain GET" || !strings.HasPrefix(resp.URL, "http://") {
		t.Fatalf("GET https→http: %q from %s", body, resp.URL)
	}
	got, err := f.Post(context.Background(), tlsSrv.URL+"/ocsp", "application/ocsp-request", []byte("r"), 100)
	if err != nil || string(got) != "plain POST" {
		t.Fatalf("POST https→http: %q %v", got, err)
	}
}

// TestNoCredentialLeakAcrossHosts (§4.D 23, CVE-2024-45336/CVE-2025-4673):
// userinfo in a URL is sent (as Basic auth, as GnuPG does) to that host
// only; Authorization, Cookie and Proxy-Authorization given for one host
// are not sent to another host a redirect points at, for GET and POST
// (other caller headers are: the only one is fetch-crl's Cache-Control).
// A redirect on the same host keeps them.
func TestNoCredentialLeakAcrossHosts(t *testing.T) {
	var a, b headerLog
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.add(r)
		w.Write([]byte("other"))
	}))
	defer other.Close()
	_, port, _ := net.SplitHostPort(other.Listener.Addr().String())
	elsewhere := "http://localhost:" + port // another host name for the same loopback server
	first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.add(r)
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/here":
			w.Write([]byte("here"))
		default:
			http.Redirect(w, r, elsewhere+"/crl", http.StatusFound)
		}
	}))
	defer first.Close()
	withUser := strings.Replace(first.URL, "http://", "http://user:secret@", 1)
	const basic = "Basic dXNlcjpzZWNyZXQ=" // user:secret
	hdr := http.Header{"Authorization": {"Bearer token"}, "Cookie": {"s=1"}, "Proxy-Authorization": {"Basic cHg6cHc="}}
	f := fetch.New(fetch.Config{})
	get := func(u string, h http.Header) string {
		resp, err := f.GetWithHeaders(context.Background(), u, nil, h)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for _, tc := range []struct {
		name         string
		do           func() string
		wantA, wantB string
	}{
		{"userinfo GET", func() string { return get(withUser+"/crl", nil) }, basic + "||", "||"},
		{"headers GET", func() string { return get(first.URL+"/crl", hdr) }, "Bearer token|s=1|Basic cHg6cHc=", "||"},
		{"userinfo POST", func() string {
			got, err := f.Post(context.Background(), withUser+"/ocsp", "application/ocsp-request", []byte("r"), 100)
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			return string(got)
		}, basic + "||", "||"},
		{"same host", func() string { return get(withUser+"/same", hdr) }, "Bearer token|s=1|Basic cHg6cHc=,Bearer token|s=1|Basic cHg6cHc=", ""},
	} {
		a.seen, b.seen = nil, nil
		body := tc.do()
		if got := a.all(); got != tc.wantA {
			t.Errorf("%s: first host saw %q, want %q (body %q)", tc.name, got, tc.wantA, body)
		}
		if got := b.all(); got != tc.wantB {
			t.Errorf("%s: the other host saw %q, want %q (body %q)", tc.name, got, tc.wantB, body)
		}
	}
}

// TestEnvProxyNoProxy (§4.D 26): with HonorEnvProxy (--honor-http-proxy)
// $http_proxy is used and $no_proxy is honoured (Go's rules; GnuPG
// 2.2.40 reads only $http_proxy). The environment is read once per
// process, so each case runs in a child process.
func TestEnvProxyNoProxy(t *testing.T) {
	if os.Getenv("FETCH_PROXY_CHILD") != "" {
		f := fetch.New(fetch.Config{HonorEnvProxy: true, Resolver: nxdomainServer(t)})
		n, err := readAll(f, "http://crl.example.invalid/ca.crl")
		if err != nil {
			t.Fatalf("RESULT error %d", gpgerr.CodeOf(err))
		}
		t.Fatalf("RESULT body %d", n)
	}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	for _, tc := range []struct {
		noProxy, want string
	}{
		{"", "RESULT body 9"},
		{"other.example", "RESULT body 9"},
		{"crl.example.invalid", "RESULT error 220"}, // direct: No name
		{".example.invalid", "RESULT error 220"},
		{"*", "RESULT error 220"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvProxyNoProxy$", "-test.count=1")
		cmd.Env = append(os.Environ(), "FETCH_PROXY_CHILD=1", "http_proxy="+proxy.URL, "HTTP_PROXY=", "no_proxy="+tc.noProxy, "NO_PROXY=")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), tc.want+"\n") {
			t.Errorf("no_proxy=%q: want %q, child said:\n%s", tc.noProxy, tc.want, out)
		}
	}
}
