package fetch_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// rawServer runs handle on every connection of a loopback listener (a
// hostile server that speaks HTTP badly on purpose).
func rawServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				bufio.NewReader(c).ReadString('\n') // the request line
				handle(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// readAll downloads u and reads the body, returning the first error.
func readAll(f *fetch.Fetcher, u string) (int, error) {
	resp, err := f.Get(context.Background(), u, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return len(b), err
}

// TestHostileServers covers threats-and-tests §4.C 18-19 and §4.D 22, 25,
// 26, 28: bodies over the cap with or without a (lying) Content-Length,
// huge chunk-size lines, servers that dribble or say nothing, odd
// statuses and bodies, a proxy that refuses or is down, and HTTP/2.
func TestHostileServers(t *testing.T) {
	const limit = 1000
	endless := func(c net.Conn) {
		for i := 0; i < 10_000; i++ {
			if _, err := c.Write([]byte(strings.Repeat("x", 1000))); err != nil {
				return
			}
		}
	}
	cases := []struct {
		name   string
		handle func(c net.Conn)
		code   gpgerr.Code
	}{
		{"endless-no-length", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"))
			endless(c)
		}, gpgerr.ErrTooLarge},
		{"length-lie-small", func(c net.Conn) { // says 10, sends more: only 10 are read
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
			endless(c)
		}, 0},
		{"length-lie-huge", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n"))
			endless(c)
		}, gpgerr.ErrTooLarge},
		{"chunked-endless", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			for i := 0; i < 10_000; i++ {
				if _, err := c.Write([]byte("3e8\r\n" + strings.Repeat("x", 1000) + "\r\n")); err != nil {
					return
				}
			}
		}, gpgerr.ErrTooLarge},
		{"chunk-size-line-huge", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
			endless(c) // a chunk-size line that never ends
		}, gpgerr.ErrNoData},
		{"headers-endless", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\n"))
			for i := 0; i < 10_000; i++ {
				if _, err := c.Write([]byte("X-Junk: " + strings.Repeat("y", 1000) + "\r\n")); err != nil {
					return
				}
			}
		}, gpgerr.ErrNoData},
		{"silent", func(c net.Conn) { time.Sleep(3 * time.Second) }, gpgerr.ErrTimeout},
		{"header-dribble", func(c net.Conn) {
			for _, b := range []byte("HTTP/1.1 200 OK\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, gpgerr.ErrTimeout},
		{"body-dribble", func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"))
			for range 100 {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		}, gpgerr.ErrTimeout},
		{"closed-at-once", func(c net.Conn) {}, gpgerr.ErrNoData},
		{"not-modified-unasked", func(c net.Conn) { c.Write([]byte("HTTP/1.1 304 Not Modified\r\n\r\n")) }, gpgerr.ErrNoData},
		{"503", func(c net.Conn) { c.Write([]byte("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n")) }, gpgerr.ErrNoData},
	}
	before := runtime.NumGoroutine()
	f := fetch.New(fetch.Config{MaxBody: limit, Timeout: 700 * time.Millisecond})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := readAll(f, rawServer(t, tc.handle)+"/ca.crl")
			if c := gpgerr.CodeOf(err); c != tc.code {
				t.Fatalf("code %d (%v), want %d", c, err, tc.code)
			}
			if n > limit {
				t.Fatalf("read %d bytes past the cap", n)
			}
		})
	}
	// No goroutine is left behind by the failed downloads.
	f.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after the hostile downloads, %d before", n, before)
	}
}

// TestProxyFailures (§4.D 26): a proxy that answers 407 or is down is a
// soft error with GnuPG's codes, never a result.
func TestProxyFailures(t *testing.T) {
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	defer auth.Close()
	down := "http://" + closedPort(t)
	for _, tc := range []struct {
		proxy string
		code  gpgerr.Code
	}{{auth.URL, gpgerr.ErrNoData}, {down, gpgerr.Code(0x8019)}} {
		f := fetch.New(fetch.Config{Proxy: tc.proxy})
		if _, err := readAll(f, "http://crl.example.invalid/ca.crl"); gpgerr.CodeOf(err) != tc.code {
			t.Errorf("proxy %s: %v (code %d), want %d", tc.proxy, err, gpgerr.CodeOf(err), tc.code)
		}
	}
}

// TestHTTP1Only (§4.D 28): an https server offering HTTP/2 is spoken to
// in HTTP/1.1 (no HTTP/2 frame floods to bound).
func TestHTTP1Only(t *testing.T) {
	var proto string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto = r.Proto
		w.Write([]byte("crl"))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	f := fetch.New(fetch.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if _, err := readAll(f, srv.URL+"/ca.crl"); err != nil {
		t.Fatal(err)
	}
	if proto != "HTTP/1.1" {
		t.Fatalf("spoke %s", proto)
	}
}

// TestPostRedirects (§4.D 23, OCSP): 301/302/307 are followed by posting
// the same request again (as GnuPG), never turned into a bodiless GET; a
// 303, a redirect to another scheme and a third redirect are refused.
func TestPostRedirects(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ocsp", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(b) != "request" || r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "want the POST", http.StatusBadRequest)
			return
		}
		w.Write([]byte("response"))
	})
	for from, code := range map[string]int{"/301": 301, "/302": 302, "/307": 307, "/303": 303} {
		mux.HandleFunc(from, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ocsp", code) })
	}
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "ftp://127.0.0.1/x", 302) })
	mux.HandleFunc("/hop3", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hop2", 302) })
	mux.HandleFunc("/hop2", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/301", 302) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := fetch.New(fetch.Config{})
	for _, tc := range []struct {
		path string
		code gpgerr.Code
	}{{"/ocsp", 0}, {"/301", 0}, {"/302", 0}, {"/307", 0}, {"/303", gpgerr.ErrNoData}, {"/to-ftp", gpgerr.ErrInvURI}, {"/hop2", 0}, {"/hop3", gpgerr.ErrNoData}} {
		got, err := f.Post(context.Background(), srv.URL+tc.path, "application/ocsp-request", []byte("request"), 1000)
		if gpgerr.CodeOf(err) != tc.code || (err == nil && string(got) != "response") {
			t.Errorf("%s: %q %v (code %d), want code %d", tc.path, got, err, gpgerr.CodeOf(err), tc.code)
		}
	}
}
