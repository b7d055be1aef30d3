package integration

import (
	"context"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestSlowListingBlocksNobody: a client asks for LISTCRLS of a big CRL and
// stops reading. Meanwhile another client loads a bigger CRL (the cache
// file must grow) and runs ISVALID: both finish, because the listing is
// copied out of the cache before it is written to the stalled client.
func TestSlowListingBlocksNobody(t *testing.T) {
	a := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Listed CA", "", ""), KeyType: testpki.ECDSA})
	b := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Loaded CA", "", ""), KeyType: testpki.ECDSA})
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	for name, c := range map[string]*testpki.Cert{"a.pem": a, "b.pem": b} {
		os.WriteFile(filepath.Join(home, "trusted-certs", name), c.PEM(), 0o600)
	}
	bigCRL := func(ca *testpki.Cert, n int, name string) string {
		now := time.Now()
		der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: now.Add(time.Hour), Count: n, Gen: func(i int) testpki.Entry {
			return testpki.Entry{Serial: big.NewInt(int64(0x100000 + i)), Reason: 1, Time: now}
		}}).Build()
		p := filepath.Join(home, name)
		os.WriteFile(p, der, 0o600)
		return p
	}
	listed, loaded := bigCRL(a, 60000, "a.crl"), bigCRL(b, 200000, "b.crl")
	startDaemon(t, bin(t, "dirmngr"), home)
	sock := filepath.Join(home, "S.dirmngr")
	transact := func(line string) error {
		c, err := assuan.Dial(sock)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Transact(context.Background(), line, &assuan.Handlers{})
	}
	if err := transact("LOADCRL " + listed); err != nil {
		t.Fatal(err)
	}
	// The stalled reader: sends LISTCRLS and never reads the reply.
	raw, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("LISTCRLS\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the listing fills the socket buffers
	done := make(chan error, 1)
	go func() {
		if err := transact("LOADCRL " + loaded); err != nil {
			done <- err
			return
		}
		leaf := b.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), Serial: big.NewInt(0x100005), KeyType: testpki.ECDSA})
		err := transact("ISVALID " + certID(t, leaf))
		if gpgerr.CodeOf(err) != gpgerr.ErrCertRevoked {
			done <- err
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("LOADCRL and ISVALID are held by a client that does not read its LISTCRLS reply")
	}
}
