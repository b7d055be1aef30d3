package integration

import (
	"context"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestStalledClientHoldsNoOther (issue 13 #5): client A starts the download
// of a CRL whose issuer only a client can supply and then does not answer
// its INQUIRE SENDCERT_SKI; client B asks about the same certificate
// meanwhile and gets its answer while A is still stalled.
func TestStalledClientHoldsNoOther(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Stall Root", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: root, NextUpdate: time.Now().Add(time.Hour)}).Build()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(der) }))
	defer srv.Close()
	leaf := root.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), Serial: big.NewInt(0x3003), KeyType: testpki.ECDSA, CRLURLs: []string{srv.URL + "/stall.crl"}})
	home := newHome(t) // the root is in no trusted-certs: the clients must send it
	startDaemon(t, bin(t, "dirmngr"), home)
	sock := filepath.Join(home, "S.dirmngr")
	line := "ISVALID " + certID(t, leaf)

	stalled, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	aDone := make(chan error, 1)
	go func() {
		c, err := assuan.Dial(sock)
		if err != nil {
			aDone <- err
			return
		}
		defer c.Close()
		aDone <- c.Transact(context.Background(), line, &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
			switch kw {
			case "SENDCERT":
				if args == "" {
					return leaf.DER(), nil
				}
			case "SENDCERT_SKI":
				once.Do(func() { close(stalled) })
				<-release
			}
			return []byte{}, nil
		}})
	}()
	defer close(release)
	select {
	case <-stalled:
	case err := <-aDone:
		t.Fatalf("client A finished without stalling: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("client A was never asked for the CRL issuer")
	}
	c, err := assuan.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bDone := make(chan error, 1)
	go func() {
		bDone <- c.Transact(context.Background(), line, &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
			switch {
			case kw == "ISTRUSTED":
				return []byte("1"), nil
			case kw == "SENDCERT" && args == "":
				return leaf.DER(), nil
			case kw == "SENDCERT", kw == "SENDCERT_SKI":
				return root.DER(), nil
			}
			return []byte{}, nil
		}})
	}()
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("client B: %v", err)
		}
	case err := <-aDone:
		t.Fatalf("client A ended (%v) before client B was answered: B waited for A", err)
	case <-time.After(25 * time.Second):
		t.Fatal("client B is held while client A stalls")
	}
}
