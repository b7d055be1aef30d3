package fetch_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/ftptest"
)

// TestGetFTPLogin covers both login dialogues (USER answered 331, then
// PASS; USER answered 230 at once): either way the client must switch to
// binary mode, or the server's ASCII mode turns LF into CR LF.
func TestGetFTPLogin(t *testing.T) {
	content := "line1\nline2\x00\n\xff"
	cases := []struct {
		name       string
		noPassword bool
		url        string
		want       []string // commands in order
	}{
		{"password", false, "/pub/ca.crl", []string{"USER anonymous", "PASS fetch-crl@", "TYPE I", "EPSV", "RETR /pub/ca.crl", "QUIT"}},
		{"no-password", true, "/pub/ca.crl", []string{"USER anonymous", "TYPE I", "EPSV", "RETR /pub/ca.crl", "QUIT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv, err := ftptest.New()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.SetNoPassword(c.noPassword)
			srv.Put(c.url, []byte(content))
			f := fetch.New(fetch.Config{MaxBody: 100})
			b, err := f.GetFTP(context.Background(), "ftp://"+srv.Addr+c.url)
			if err != nil {
				t.Fatalf("GetFTP: %v", err)
			}
			if string(b) != content {
				t.Errorf("content %q, want %q (binary mode not set?)", b, content)
			}
			srv.Close() // wait for the session to read QUIT
			if got := srv.Commands(); !slices.Equal(got, c.want) {
				t.Errorf("commands %q, want %q", got, c.want)
			}
		})
	}
}

// TestGetFTPNoInjection: a URL whose path decodes to a line break is
// refused before anything is sent.
func TestGetFTPNoInjection(t *testing.T) {
	srv, err := ftptest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := fetch.New(fetch.Config{MaxBody: 100})
	_, err = f.GetFTP(context.Background(), "ftp://"+srv.Addr+"/a%0d%0aDELE%20b")
	if gpgerr.CodeOf(err) != gpgerr.ErrInvURI {
		t.Fatalf("got %v, want an invalid URI error", err)
	}
	srv.Close()
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c, "DELE") {
			t.Fatalf("injected command reached the server: %q", srv.Commands())
		}
	}
}
