package services_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/services"
)

func load(t *testing.T, home string) *config.Loaded {
	t.Helper()
	l, err := config.Load([]string{"--homedir", home})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestReloadSwapsWholeSet: a reload builds a new Set from the changed
// configuration and certificate directories and puts it in effect in one
// step; the old Set stays intact for commands still using it; a
// configuration that cannot be built keeps the Set in effect.
func TestReloadSwapsWholeSet(t *testing.T) {
	services.SysconfDir = t.TempDir()
	home := t.TempDir()
	conf := filepath.Join(home, "dirmngr.conf")
	os.WriteFile(conf, []byte("max-replies 7\n"), 0o600)
	lv, err := services.Open(load(t, home), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	old := lv.Current()
	if old.Opts.MaxReplies != 7 {
		t.Fatalf("max-replies %d", old.Opts.MaxReplies)
	}
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Reload Root", "", ""), KeyType: testpki.ECDSA})
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	os.WriteFile(filepath.Join(home, "trusted-certs", "root.pem"), root.PEM(), 0o600)
	os.WriteFile(conf, []byte("max-replies 9\n"), 0o600)
	if err := lv.Reload(load(t, home)); err != nil {
		t.Fatal(err)
	}
	cur := lv.Current()
	if cur == old || cur.Opts.MaxReplies != 9 || cur.Cache != old.Cache {
		t.Fatalf("after reload: same set %v, max-replies %d, same cache %v", cur == old, cur.Opts.MaxReplies, cur.Cache == old.Cache)
	}
	if e := cur.Certs.ByFingerprint(root.Fingerprint()); e == nil || e.Source != certstore.Trusted {
		t.Fatal("new set lacks the trusted certificate added before the reload")
	}
	if old.Opts.MaxReplies != 7 || old.Certs.ByFingerprint(root.Fingerprint()) != nil {
		t.Fatal("the old set changed")
	}
	// A configuration whose services cannot be built: the Set stays.
	os.WriteFile(conf, []byte("max-replies 11\nocsp-signer not-a-fingerprint\n"), 0o600)
	if err := lv.Reload(load(t, home)); err == nil {
		t.Fatal("bad ocsp-signer accepted")
	}
	if lv.Current() != cur {
		t.Fatal("a failed build replaced the set")
	}
}

// TestReloadClosesIdleConnections: a reload closes the replaced Set's
// kept-alive HTTP connections instead of leaving one set per reload open.
func TestReloadClosesIdleConnections(t *testing.T) {
	services.SysconfDir = t.TempDir()
	home := t.TempDir()
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	defer srv.Close()
	lv, err := services.Open(load(t, home), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lv.Close()
	resp, err := lv.Current().Fetch.Get(context.Background(), srv.URL+"/crl", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := lv.Reload(load(t, home)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced Set's idle connection is still open after the reload")
	}
}
