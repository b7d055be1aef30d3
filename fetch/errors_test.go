package fetch_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// closedPort returns a loopback address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// nxdomainServer answers every DNS query on a loopback UDP port with
// NXDOMAIN and returns a resolver that asks only it.
func nxdomainServer(t *testing.T) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			// Same id and question, QR|RD|RA, rcode 3; no answers.
			resp := append([]byte{buf[0], buf[1], 0x81, 0x83, buf[4], buf[5], 0, 0, 0, 0, 0, 0}, buf[12:n]...)
			pc.WriteTo(resp, from)
		}
	}()
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

// TestTransportErrors: each transport failure carries GnuPG 2.2.40's code
// (integration/transport_test.go compares the wire answers with GnuPG's
// dirmngr) and one plain message without Go's error chain.
func TestTransportErrors(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("0"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer hang.Close()
	rel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/loop":
			w.Header().Set("Location", "/loop")
			w.WriteHeader(http.StatusFound)
		case "/evil":
			w.Header().Set("Location", "//evil.example.invalid/x")
			w.WriteHeader(http.StatusFound)
		}
	}))
	defer rel.Close()
	refused := "http://" + closedPort(t) + "/ca.crl"
	cases := []struct {
		name string
		cfg  fetch.Config
		url  string
		code gpgerr.Code
		msg  string
	}{
		{"refused", fetch.Config{}, refused, gpgerr.Code(0x8019), "error retrieving '" + refused + "': Connection refused"},
		{"unknown host", fetch.Config{Resolver: nxdomainServer(t)}, "http://crl.example.invalid/ca.crl", gpgerr.ErrNoName,
			"error retrieving 'http://crl.example.invalid/ca.crl': No name"},
		{"request timeout", fetch.Config{Timeout: 300 * time.Millisecond}, hang.URL + "/ca.crl", gpgerr.ErrTimeout,
			"error retrieving '" + hang.URL + "/ca.crl': Timeout (no complete answer within the request timeout)"},
		{"relative redirect", fetch.Config{NoRelativeRedirects: true}, rel.URL + "/loop", gpgerr.ErrBadURI,
			"error retrieving '" + rel.URL + "/loop': Syntax error in URI (relative redirect)"},
		{"scheme-relative redirect", fetch.Config{NoRelativeRedirects: true}, rel.URL + "/evil", gpgerr.ErrBadURI,
			"error retrieving '" + rel.URL + "/evil': Syntax error in URI (relative redirect)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fetch.New(tc.cfg)
			resp, err := f.Get(context.Background(), tc.url, nil)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if c := gpgerr.CodeOf(err); c != tc.code {
				t.Fatalf("code %d (%v), want %d", c, err, tc.code)
			}
			if err.Error() != tc.msg {
				t.Errorf("message\n%q, want\n%q", err.Error(), tc.msg)
			}
		})
	}
	if gpgerr.Code(0x8019).Error() != "Connection refused" {
		t.Fatalf("0x8019 is %q", gpgerr.Code(0x8019).Error())
	}
}

// TestRelativeRedirectFollowed: without NoRelativeRedirects (fetch-crl), a
// relative Location is followed, within the redirect limit.
func TestRelativeRedirectFollowed(t *testing.T) {
	srv := server()
	defer srv.Close()
	resp, err := fetch.New(fetch.Config{}).Get(context.Background(), srv.URL+"/r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := fetch.New(fetch.Config{NoRelativeRedirects: true}).Get(context.Background(), srv.URL+"/r1", nil); gpgerr.CodeOf(err) != gpgerr.ErrBadURI {
		t.Fatalf("strict: %v", err)
	}
}
