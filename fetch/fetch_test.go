package fetch_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/ftptest"
)

func server() *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte("hello"))
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 5000)) })
	mux.HandleFunc("/gzip-bomb", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			w.WriteHeader(http.StatusBadRequest) // compression must not be asked for
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(make([]byte, 100000))
		zw.Close()
	})
	mux.HandleFunc("/413", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(413) })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { time.Sleep(1200 * time.Millisecond) })
	mux.HandleFunc("/r1", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/r2", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/r1", http.StatusFound) })
	mux.HandleFunc("/r3", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/r2", http.StatusFound) })
	for _, scheme := range []string{"ftp://127.0.0.1/x", "file:///etc/passwd", "ldap://127.0.0.1/cn=x", "data:,x", "gopher://127.0.0.1/x"} {
		mux.HandleFunc("/to-"+strings.TrimSuffix(scheme[:strings.Index(scheme, ":")], ":"), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", scheme)
			w.WriteHeader(http.StatusFound)
		})
	}
	mux.HandleFunc("/no-location", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusFound) })
	return httptest.NewServer(mux)
}

// gzipped is the body /gzip-bomb sends: n zero bytes, gzip-compressed.
func gzipped(n int) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(make([]byte, n))
	zw.Close()
	return b.String()
}

func TestGet(t *testing.T) {
	srv := server()
	defer srv.Close()
	f := fetch.New(fetch.Config{MaxBody: 1000, Timeout: 500 * time.Millisecond})
	cases := []struct {
		path string
		body string
		code gpgerr.Code // error code of Get or of reading the body
	}{
		{"/ok", "hello", 0},
		{"/r1", "hello", 0},
		{"/r2", "hello", 0},
		{"/r3", "", gpgerr.ErrNoData}, // third redirect refused
		{"/to-ftp", "", gpgerr.ErrInvURI},
		{"/to-file", "", gpgerr.ErrInvURI},
		{"/to-ldap", "", gpgerr.ErrInvURI},
		{"/to-data", "", gpgerr.ErrInvURI},
		{"/to-gopher", "", gpgerr.ErrInvURI},
		{"/no-location", "", gpgerr.ErrNoData},
		{"/missing", "", gpgerr.ErrNoData},
		{"/500", "", gpgerr.ErrNoData},
		{"/413", "", gpgerr.ErrTooLarge},
		{"/big", "", gpgerr.ErrTooLarge},
		{"/gzip-bomb", gzipped(100000), 0}, // passed on as it came, never inflated
		{"/slow", "", gpgerr.ErrTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := f.Get(context.Background(), srv.URL+tc.path, nil)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if c := gpgerr.CodeOf(err); (err == nil && tc.code != 0) || (err != nil && c != tc.code) {
				t.Fatalf("err %v (code %d), want code %d", err, c, tc.code)
			}
			if err == nil && string(body) != tc.body {
				t.Fatalf("body %q", body)
			}
		})
	}
	for _, u := range []string{"ftp://x/y", "not a url", "http://"} {
		if _, err := f.Get(context.Background(), u, nil); gpgerr.CodeOf(err) != gpgerr.ErrInvURI {
			t.Errorf("%q: %v", u, err)
		}
	}
}

func TestConditionalAndDisabled(t *testing.T) {
	srv := server()
	defer srv.Close()
	f := fetch.New(fetch.Config{})
	resp, err := f.Get(context.Background(), srv.URL+"/ok", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v := resp.Validators
	resp, err = f.Get(context.Background(), srv.URL+"/ok", &v)
	if err != nil || !resp.NotModified {
		t.Fatalf("conditional GET: %v %+v", err, resp)
	}
	off := fetch.New(fetch.Config{DisableHTTP: true})
	if _, err := off.Get(context.Background(), srv.URL+"/ok", nil); gpgerr.CodeOf(err) != gpgerr.ErrNotSupported {
		t.Fatalf("disabled: %v", err)
	}
}

// TestProxy: the session proxy (OPTION http-proxy) routes the request.
func TestProxy(t *testing.T) {
	var seen string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.String()
		w.Write([]byte("via proxy"))
	}))
	defer proxy.Close()
	f := fetch.New(fetch.Config{}).WithProxy(proxy.URL)
	resp, err := f.Get(context.Background(), "http://crl.example.invalid/ca.crl", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, []byte("via proxy")) || seen != "http://crl.example.invalid/ca.crl" {
		t.Fatalf("body %q, proxy saw %q", body, seen)
	}
}

func TestGetFTP(t *testing.T) {
	srv, err := ftptest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.Put("/pub/ca.crl", []byte("crl bytes"))
	f := fetch.New(fetch.Config{MaxBody: 100})
	b, err := f.GetFTP(context.Background(), "ftp://"+srv.Addr+"/pub/ca.crl")
	if err != nil || string(b) != "crl bytes" {
		t.Fatalf("GetFTP: %q %v", b, err)
	}
	if _, err := f.GetFTP(context.Background(), "ftp://"+srv.Addr+"/missing.crl"); gpgerr.CodeOf(err) != gpgerr.ErrNoData {
		t.Fatalf("missing file: %v", err)
	}
	srv.Put("/big", make([]byte, 1000))
	if _, err := f.GetFTP(context.Background(), "ftp://"+srv.Addr+"/big"); gpgerr.CodeOf(err) != gpgerr.ErrTooLarge {
		t.Fatalf("oversized: %v", err)
	}
}
