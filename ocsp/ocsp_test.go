package ocsp

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestVerify covers the checks x/crypto/ocsp does not make: CertID
// fields, the signer's authority, nonces and the time window.
func TestVerify(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("OCSP CA", "", ""), KeyType: testpki.ECDSA})
	other := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Other CA", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), Serial: big.NewInt(0x77), KeyType: testpki.ECDSA})
	delegated := ca.Issue(testpki.Template{Subject: testpki.Name("responder", "", ""), KeyType: testpki.ECDSA, ExtKeyUse: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}})
	noEKU := ca.Issue(testpki.Template{Subject: testpki.Name("no eku", "", ""), KeyType: testpki.ECDSA})
	pinnedCert := other.Issue(testpki.Template{Subject: testpki.Name("pinned", "", ""), KeyType: testpki.ECDSA})
	now := time.Now()
	id, err := newCertID(leaf.Cert, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	_, nonce := buildRequest(id, bytes.Repeat([]byte{7}, 16))
	_, wrongNonce := buildRequest(id, bytes.Repeat([]byte{8}, 16))
	type tc struct {
		name   string
		signer *testpki.Cert
		embed  bool
		issuer *testpki.Cert // for the CertID's issuer hashes
		serial int64
		this   time.Time
		next   time.Time
		nonce  []byte
		status int
		code   gpgerr.Code // 0 = accepted
		pinned bool
	}
	base := tc{signer: ca, issuer: ca, serial: 0x77, this: now.Add(-time.Minute), next: now.Add(time.Hour), nonce: nonce, status: xocsp.Good}
	cases := []tc{}
	add := func(name string, f func(c *tc)) {
		c := base
		c.name = name
		f(&c)
		cases = append(cases, c)
	}
	add("issuer-signed-good", func(c *tc) {})
	add("revoked", func(c *tc) { c.status = xocsp.Revoked })
	add("unknown", func(c *tc) { c.status = xocsp.Unknown })
	add("delegated-with-eku", func(c *tc) { c.signer, c.embed = delegated, true })
	add("delegated-without-eku", func(c *tc) { c.signer, c.embed, c.code = noEKU, true, gpgerr.ErrBadCACert })
	add("foreign-signer", func(c *tc) { c.signer, c.embed, c.code = other, true, gpgerr.ErrBadCACert })
	add("pinned-signer", func(c *tc) { c.signer, c.embed, c.pinned = pinnedCert, true, true })
	add("other-issuer-same-serial", func(c *tc) { c.issuer, c.code = other, gpgerr.ErrNotFound })
	add("other-serial", func(c *tc) { c.serial, c.code = 0x78, gpgerr.ErrNotFound })
	add("wrong-nonce", func(c *tc) { c.nonce, c.code = wrongNonce, gpgerr.ErrBadSignature })
	add("missing-nonce", func(c *tc) { c.nonce = nil })
	add("future", func(c *tc) { c.this, c.next, c.code = now.Add(time.Hour), now.Add(2*time.Hour), gpgerr.ErrTimeConflict })
	add("too-old", func(c *tc) {
		c.this, c.next, c.code = now.Add(-100*24*time.Hour), now.Add(time.Hour), gpgerr.ErrTimeConflict
	})
	add("expired", func(c *tc) {
		c.this, c.next, c.code = now.Add(-10*time.Hour), now.Add(-4*time.Hour), gpgerr.ErrTimeConflict
	})
	add("expired-within-current-period", func(c *tc) { c.this, c.next = now.Add(-10*time.Hour), now.Add(-2*time.Hour) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmpl := xocsp.Response{Status: c.status, SerialNumber: big.NewInt(c.serial), ThisUpdate: c.this, NextUpdate: c.next, RevokedAt: now.Add(-time.Hour)}
			if c.embed {
				tmpl.Certificate = c.signer.Cert
			}
			if c.nonce != nil {
				tmpl.ExtraExtensions = []pkix.Extension{{Id: oidNonce, Value: c.nonce}}
			}
			der, err := xocsp.CreateResponse(c.issuer.Cert, c.signer.Cert, tmpl, c.signer.Key)
			if err != nil {
				t.Fatal(err)
			}
			chk := New(Config{Signers: []string{pinnedCert.Fingerprint()}}, nil, nil)
			r, err := chk.Verify(der, id, ca.Cert, nonce)
			if c.code != 0 {
				if !errors.Is(err, c.code) {
					t.Fatalf("err %v, want code %d", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if r.Status != c.status || r.Pinned != c.pinned || r.SignerFpr != c.signer.Fingerprint() {
				t.Fatalf("result %+v", r)
			}
		})
	}
	big := make([]byte, MaxResponse+1)
	if _, err := New(Config{}, nil, nil).Verify(big, id, ca.Cert, nil); !errors.Is(err, gpgerr.ErrTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := New(Config{}, nil, nil).Verify(xocsp.TryLaterErrorResponse, id, ca.Cert, nil); !errors.Is(err, gpgerr.ErrGeneral) {
		t.Fatalf("tryLater: %v", err)
	}
}

func TestParseSigners(t *testing.T) {
	f, err := ParseSigners("56:D0:18:0A:04:22:C6:90:65:06:E4:C6:A1:F2:D4:08:07:C5:88:82", "/nonexistent")
	if err != nil || len(f) != 1 || f[0] != "56D0180A0422C6906506E4C6A1F2D40807C58882" {
		t.Fatalf("%v %v", f, err)
	}
	if _, err := ParseSigners("notafingerprint", "/x"); err == nil {
		t.Fatal("bad fingerprint accepted")
	}
	dir := t.TempDir()
	testpki.WriteFile(dir, "signers", []byte("# pinned\n\n56D0180A0422C6906506E4C6A1F2D40807C58882\naa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd\n"))
	f, err = ParseSigners("./signers", dir)
	if err != nil || len(f) != 2 || f[1] != "AABBCCDDEEFF00112233445566778899AABBCCDD" {
		t.Fatalf("file: %v %v", f, err)
	}
}

func FuzzVerify(f *testing.F) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Fuzz CA", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	id, _ := newCertID(leaf.Cert, ca.Cert)
	good, _ := xocsp.CreateResponse(ca.Cert, ca.Cert, xocsp.Response{Status: xocsp.Good, SerialNumber: leaf.Cert.SerialNumber, ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, ca.Key)
	f.Add(good)
	f.Add(xocsp.TryLaterErrorResponse)
	chk := New(Config{}, nil, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := chk.Verify(in, id, ca.Cert, nil)
		if err == nil && (r.Signer == nil || r.SignerFpr == "") {
			t.Fatal("accepted without a signer")
		}
		if err == nil && !bytes.Equal(r.Signer.Raw, ca.Cert.Raw) {
			t.Fatal("accepted a signer other than the issuer")
		}
	})
}

// TestCacheAndSingleFlight: concurrent checks of one certificate make one
// request; later checks are answered from the cache until it goes stale;
// unverified answers are never cached.
func TestCacheAndSingleFlight(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Flight CA", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	var hits atomic.Int32
	bad := atomic.Bool{}
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		body, _ := io.ReadAll(r.Body)
		req, _ := xocsp.ParseRequest(body)
		signer := ca
		if bad.Load() {
			signer = testpki.NewRoot(testpki.Template{Subject: testpki.Name("evil", "", ""), KeyType: testpki.ECDSA})
		}
		resp, _ := xocsp.CreateResponse(ca.Cert, signer.Cert, xocsp.Response{Status: xocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour), Certificate: signer.Cert}, signer.Key)
		w.Write(resp)
	}))
	defer srv.Close()
	store := &memCache{m: map[string][]byte{}}
	chk := New(Config{}, fetch.New(fetch.Config{}), store)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := chk.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests for 8 concurrent checks", n)
	}
	r, err := chk.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert)
	if err != nil || !r.Cached || hits.Load() != 1 {
		t.Fatalf("second check: cached=%v err=%v requests=%d", r != nil && r.Cached, err, hits.Load())
	}
	// A Checker of a later configuration sharing the counters counts on.
	counters := &Counters{}
	first := New(Config{Counters: counters}, fetch.New(fetch.Config{}), store)
	first.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert)
	later := New(Config{Counters: counters}, fetch.New(fetch.Config{}), store)
	later.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert)
	if req, hit := later.Stats(); req != 0 || hit != 2 {
		t.Fatalf("shared counters: %d requests, %d cache hits; want 0, 2", req, hit)
	}
	// Stale cache entries are not used; a rejected answer is not cached.
	chk.cfg.Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	bad.Store(true)
	if _, err := chk.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert); err == nil {
		t.Fatal("forged answer accepted")
	}
	if hits.Load() != 2 {
		t.Fatalf("stale entry served from cache")
	}
	chk.cfg.Now = time.Now
	r, _ = chk.Check(context.Background(), srv.URL, leaf.Cert, ca.Cert)
	if r == nil || !r.Cached {
		t.Fatal("the forged answer replaced the cached one")
	}
}

type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (c *memCache) GetOCSP(k []byte) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[string(k)]
	return v, ok
}

func (c *memCache) PutOCSP(k, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[string(k)] = v
	return nil
}
