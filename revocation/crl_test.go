package revocation_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
	"github.com/dirmngr/dirmngr/revocation"
)

type env struct {
	chk   *revocation.Checker
	cache *crlcache.Cache
	certs *certstore.Store
	log   *logBuffer
}

// logBuffer collects the checker's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newEnv(t *testing.T, trusted ...*testpki.Cert) *env {
	t.Helper()
	return newEnvWith(t, revocation.Config{}, trusted...)
}

// newEnvWith is newEnv with a configuration (its Limits are the tests').
func newEnvWith(t *testing.T, cfg revocation.Config, trusted ...*testpki.Cert) *env {
	t.Helper()
	cache, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cache.Close() })
	store := certstore.New()
	for _, c := range trusted {
		store.Add(c.Cert, certstore.Trusted)
	}
	lb := &logBuffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.Limits = crl.Limits{MaxBytes: 1 << 20, MaxEntries: 1000}
	chk := revocation.New(cfg, revocation.Parts{Cache: cache, Certs: store, Fetch: fetch.New(fetch.Config{}), Log: log})
	return &env{chk, cache, store, lb}
}

// fakeAsker answers inquiries from a certificate list and a trust flag,
// counting ISTRUSTED questions.
type fakeAsker struct {
	certs   []*testpki.Cert
	trusted bool
	asked   atomic.Int32
}

func (a *fakeAsker) SendCert(_ context.Context, pattern string) ([]byte, error) {
	for _, c := range a.certs {
		dn, _ := certid.DN(c.Cert.RawSubject)
		if pattern == "/"+dn {
			return c.DER(), nil
		}
	}
	return nil, nil
}

func (a *fakeAsker) SendCertSKI(_ context.Context, keyid []byte, subject string) ([]byte, error) {
	for _, c := range a.certs {
		if bytes.Equal(c.Cert.SubjectKeyId, keyid) {
			return c.DER(), nil
		}
	}
	return nil, nil
}

func (a *fakeAsker) IsTrusted(context.Context, string) bool {
	a.asked.Add(1)
	return a.trusted
}

func TestLoadAlgorithmsAndLookup(t *testing.T) {
	for _, kt := range []testpki.KeyType{testpki.RSA, testpki.RSAPSS, testpki.ECDSA, testpki.Ed25519} {
		ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Alg CA", "", ""), KeyType: kt})
		good := ca.Issue(testpki.Template{Subject: testpki.Name("good", "", ""), KeyType: testpki.ECDSA})
		bad := ca.Issue(testpki.Template{Subject: testpki.Name("bad", "", ""), KeyType: testpki.ECDSA})
		e := newEnv(t, ca)
		der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: time.Now().Add(time.Hour), Entries: []testpki.Entry{{Serial: bad.Cert.SerialNumber, Reason: 1}}}).Build()
		m, err := e.chk.Load(context.Background(), nil, bytes.NewReader(der), "mem", fetch.Validators{})
		if err != nil {
			t.Fatalf("key type %d: %v", kt, err)
		}
		if m.TrustFpr != "" {
			t.Errorf("trusted-certs root gave trust fpr %s", m.TrustFpr)
		}
		for _, tc := range []struct {
			c    *testpki.Cert
			want revocation.Status
		}{{good, revocation.Valid}, {bad, revocation.Revoked}} {
			st, err := e.chk.CertStatus(context.Background(), nil, tc.c.Cert)
			if err != nil || st != tc.want {
				t.Errorf("key type %d: %s: %v %v", kt, tc.c.Cert.Subject.CommonName, st, err)
			}
		}
	}
}

// TestRefusalsKeepCachedCRL: every rejected CRL leaves the cached one
// answering as before, and is logged with its source and the reason.
func TestRefusalsKeepCachedCRL(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Refusal CA", "", ""), KeyType: testpki.ECDSA})
	other := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Refusal CA", "", ""), KeyType: testpki.ECDSA})
	victim := ca.Issue(testpki.Template{Subject: testpki.Name("victim", "", ""), KeyType: testpki.ECDSA})
	e := newEnv(t, ca)
	now := time.Now()
	revoked := []testpki.Entry{{Serial: victim.Cert.SerialNumber, Reason: 1}}
	good := (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(5), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour), Entries: revoked}).Build()
	if _, err := e.chk.Load(context.Background(), nil, bytes.NewReader(good), "good", fetch.Validators{}); err != nil {
		t.Fatal(err)
	}
	crit := testpki.Extension{ID: []int{1, 2, 3, 4}, Critical: true, Value: []byte{0x30, 0x00}}
	emptyIDP := testpki.Extension{ID: testpki.OIDIssuingDP, Critical: true, Value: []byte{0x30, 0x00}}
	many := make([]testpki.Entry, 1001)
	for i := range many {
		many[i] = testpki.Entry{Serial: big.NewInt(int64(i + 1)), Reason: -1}
	}
	cases := []struct {
		name string
		der  []byte
		code gpgerr.Code
	}{
		{"bad-signature", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), BadSignature: true}).Build(), gpgerr.ErrBadSignature},
		{"signed-by-other-key", (&testpki.CRLSpec{Issuer: other, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), NoAKI: true}).Build(), gpgerr.ErrBadSignature},
		{"unknown-critical", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), Extensions: []testpki.Extension{crit}}).Build(), gpgerr.ErrInvCRL},
		{"empty-idp", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), Extensions: []testpki.Extension{emptyIDP}}).Build(), gpgerr.ErrInvCRL},
		{"future", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), ThisUpdate: now.Add(time.Hour), NextUpdate: now.Add(2 * time.Hour)}).Build(), gpgerr.ErrInvCRL},
		{"rollback-number", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(4), NextUpdate: now.Add(time.Hour)}).Build(), gpgerr.ErrInvCRL},
		{"rollback-time", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(5), ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(time.Hour)}).Build(), gpgerr.ErrInvCRL},
		{"duplicate-serial", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), Entries: []testpki.Entry{{Serial: big.NewInt(9), Reason: -1}, {Serial: big.NewInt(9), Reason: -1}}}).Build(), gpgerr.ErrInvCRL},
		{"too-many-entries", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), NextUpdate: now.Add(time.Hour), Entries: many}).Build(), gpgerr.ErrTooLarge},
		{"too-old", (&testpki.CRLSpec{Issuer: ca, Number: big.NewInt(6), ThisUpdate: now.Add(-2 * time.Hour), NextUpdate: now.Add(-time.Hour)}).Build(), gpgerr.ErrCRLTooOld},
		{"truncated", good[:len(good)-10], gpgerr.ErrBadBER},
		{"trailing", append(append([]byte(nil), good...), 0), gpgerr.ErrInvCRL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.chk.Load(context.Background(), nil, bytes.NewReader(tc.der), tc.name, fetch.Validators{})
			if c := gpgerr.CodeOf(err); c != tc.code {
				t.Fatalf("code %d (%v), want %d", c, err, tc.code)
			}
			logged := false
			for _, l := range strings.Split(e.log.String(), "\n") {
				if strings.Contains(l, `msg="crl_parse_insert failed" source=`+tc.name+" ") && strings.Contains(l, `code="`+tc.code.Error()+`"`) {
					logged = true
				}
			}
			if !logged {
				t.Fatalf("rejection not logged with source and reason:\n%s", e.log)
			}
			m, _ := e.cache.Get(mustHash(t, victim))
			if m.Number != "05" || m.URL != "good" || m.Flags != 0 {
				t.Fatalf("cached CRL changed: %+v", m)
			}
			if st, _ := e.chk.CertStatus(context.Background(), nil, victim.Cert); st != revocation.Revoked {
				t.Fatalf("victim now %v", st)
			}
		})
	}
}

func mustHash(t *testing.T, c *testpki.Cert) string {
	h, err := certid.IssuerHash(c.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestUntrustedRootAndChain: a CRL signed by an intermediate whose root is
// not in trusted-certs is found through the client and then needs ISTRUSTED
// on use; "not trusted" makes it unusable.
func TestUntrustedRootAndChain(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Chain Root", "", ""), KeyType: testpki.ECDSA})
	inter := root.Issue(testpki.Template{Subject: testpki.Name("Chain Sub", "", ""), IsCA: true, KeyType: testpki.ECDSA})
	leaf := inter.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	e := newEnv(t)
	der := (&testpki.CRLSpec{Issuer: inter, NextUpdate: time.Now().Add(time.Hour)}).Build()
	// Without a client nothing can be found.
	if _, err := e.chk.Load(context.Background(), nil, bytes.NewReader(der), "x", fetch.Validators{}); gpgerr.CodeOf(err) != gpgerr.ErrMissingCert {
		t.Fatalf("no client: %v", err)
	}
	ask := &fakeAsker{certs: []*testpki.Cert{root, inter}, trusted: true}
	m, err := e.chk.Load(context.Background(), &revocation.Request{Asker: ask}, bytes.NewReader(der), "x", fetch.Validators{})
	if err != nil {
		t.Fatal(err)
	}
	if m.TrustFpr != root.Fingerprint() {
		t.Fatalf("trust fpr %q, want root %s", m.TrustFpr, root.Fingerprint())
	}
	if st, _ := e.chk.CertStatus(context.Background(), &revocation.Request{Asker: ask}, leaf.Cert); st != revocation.Valid || ask.asked.Load() != 1 {
		t.Fatalf("trusted: %v, asked %d", st, ask.asked.Load())
	}
	ask.trusted = false
	if st, _ := e.chk.CertStatus(context.Background(), &revocation.Request{Asker: ask}, leaf.Cert); st != revocation.CantUse {
		t.Fatalf("not trusted: %v", st)
	}
	if st, _ := e.chk.CertStatus(context.Background(), nil, leaf.Cert); st != revocation.CantUse {
		t.Fatalf("no client: %v", st)
	}
}

// TestForceRefreshAndNoNextUpdate: the 30-minute force-crl-refresh rule and
// the one-day validity of a CRL without nextUpdate.
func TestForceRefreshAndNoNextUpdate(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Refresh CA", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	e := newEnv(t, ca)
	m, err := e.chk.Load(context.Background(), nil, bytes.NewReader((&testpki.CRLSpec{Issuer: ca}).Build()), "x", fetch.Validators{})
	if err != nil {
		t.Fatal(err)
	}
	if d := m.NextUpdate.Sub(m.ThisUpdate); d != 24*time.Hour {
		t.Errorf("no nextUpdate: valid for %v", d)
	}
	if st, _ := e.chk.CertStatus(context.Background(), &revocation.Request{ForceRefresh: true}, leaf.Cert); st != revocation.Valid {
		t.Errorf("just refreshed, force: %v", st)
	}
	e.cache.Touch(mustHash(t, leaf), time.Now().Add(-31*time.Minute))
	if st, _ := e.chk.CertStatus(context.Background(), &revocation.Request{ForceRefresh: true}, leaf.Cert); st != revocation.DontKnow {
		t.Errorf("stale with force: %v", st)
	}
	if st, _ := e.chk.CertStatus(context.Background(), nil, leaf.Cert); st != revocation.Valid {
		t.Errorf("stale without force: %v", st)
	}
}

// TestSingleFlight: concurrent requests for one missing CRL cause one
// download.
func TestSingleFlight(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Flight CA", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: time.Now().Add(time.Hour)}).Build()
	var hits atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		w.Write(der)
	}))
	defer srv.Close()
	e := newEnv(t, ca)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.chk.Fetch(context.Background(), nil, srv.URL+"/ca.crl")
		}()
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

func TestReloadForDistributionPoints(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("DP CA", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: time.Now().Add(time.Hour)}).Build()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok.crl" {
			w.Write(der)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	e := newEnv(t, ca)
	// All DPs are tried in order; the first success wins.
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA, CRLURLs: []string{"ftp://x/y", srv.URL + "/missing.crl", srv.URL + "/ok.crl"}})
	if st, err := e.chk.CheckCert(context.Background(), nil, leaf.Cert); err != nil || st != revocation.Valid {
		t.Fatal(err)
	}
	// Only failing DPs: the last error (404 → No data).
	e2 := newEnv(t, ca)
	leaf2 := ca.Issue(testpki.Template{Subject: testpki.Name("leaf2", "", ""), KeyType: testpki.ECDSA, CRLURLs: []string{srv.URL + "/missing.crl"}})
	if _, err := e2.chk.CheckCert(context.Background(), nil, leaf2.Cert); gpgerr.CodeOf(err) != gpgerr.ErrNoData {
		t.Fatalf("404: %v", err)
	}
	leaf3 := ca.Issue(testpki.Template{Subject: testpki.Name("leaf3", "", ""), KeyType: testpki.ECDSA})
	// No DP and no LDAP server: Configuration error, as GnuPG.
	if _, err := e2.chk.CheckCert(context.Background(), nil, leaf3.Cert); !errors.Is(err, gpgerr.ErrConfiguration) {
		t.Fatalf("no DP: %v", err)
	}
}

// TestConditionalRefresh: a refresh of an unchanged CRL is a conditional
// GET answered 304, which only updates the refresh time.
func TestConditionalRefresh(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Cond CA", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: time.Now().Add(time.Hour)}).Build()
	var full, notModified atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"crl-1"` {
			notModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		full.Add(1)
		w.Header().Set("ETag", `"crl-1"`)
		w.Write(der)
	}))
	defer srv.Close()
	e := newEnv(t, ca)
	if err := e.chk.Fetch(context.Background(), nil, srv.URL+"/ca.crl"); err != nil {
		t.Fatal(err)
	}
	hash := mustHash(t, ca.Issue(testpki.Template{Subject: testpki.Name("x", "", ""), KeyType: testpki.ECDSA}))
	e.cache.Touch(hash, time.Now().Add(-time.Hour))
	if err := e.chk.Fetch(context.Background(), nil, srv.URL+"/ca.crl"); err != nil {
		t.Fatal(err)
	}
	m, _ := e.cache.Get(hash)
	if full.Load() != 1 || notModified.Load() != 1 || time.Since(m.LastRefresh) > time.Minute {
		t.Fatalf("full %d, 304 %d, last refresh %v", full.Load(), notModified.Load(), m.LastRefresh)
	}
}

// slowReader hands out data in small pieces with pauses, to keep a load
// running.
type slowReader struct {
	data []byte
	step int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.step, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	time.Sleep(time.Millisecond)
	return n, nil
}

// TestLookupsDuringLoad: while a big CRL of one issuer is being ingested,
// lookups against another issuer's cached CRL keep answering.
func TestLookupsDuringLoad(t *testing.T) {
	a := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Busy CA", "", ""), KeyType: testpki.ECDSA})
	b := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Quiet CA", "", ""), KeyType: testpki.ECDSA})
	leaf := b.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	e := newEnv(t, a, b)
	if _, err := e.chk.Load(context.Background(), nil, bytes.NewReader((&testpki.CRLSpec{Issuer: b, NextUpdate: time.Now().Add(time.Hour)}).Build()), "b", fetch.Validators{}); err != nil {
		t.Fatal(err)
	}
	big := (&testpki.CRLSpec{Issuer: a, NextUpdate: time.Now().Add(time.Hour), Count: 900, Gen: func(i int) testpki.Entry {
		return testpki.Entry{Serial: big.NewInt(int64(i + 1)), Reason: -1}
	}}).Build()
	done := make(chan error, 1)
	go func() {
		_, err := e.chk.Load(context.Background(), nil, &slowReader{data: big, step: 256}, "a", fetch.Validators{})
		done <- err
	}()
	lookups := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if lookups < 10 {
				t.Fatalf("only %d lookups during the load", lookups)
			}
			return
		default:
		}
		start := time.Now()
		st, err := e.chk.CertStatus(context.Background(), nil, leaf.Cert)
		if err != nil || st != revocation.Valid {
			t.Fatalf("lookup during load: %v %v", st, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("lookup blocked for %v by the load", d)
		}
		lookups++
		time.Sleep(5 * time.Millisecond)
	}
}

func (a *fakeAsker) SendTarget(context.Context) ([]byte, error) { return nil, nil }

// stalledAsker never answers (a client that stops responding to INQUIRE)
// until released.
type stalledAsker struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (a *stalledAsker) stall() {
	a.once.Do(func() { close(a.entered) })
	<-a.release
}

func (a *stalledAsker) SendTarget(context.Context) ([]byte, error) {
	a.stall()
	return nil, nil
}
func (a *stalledAsker) SendCert(context.Context, string) ([]byte, error) { a.stall(); return nil, nil }
func (a *stalledAsker) SendCertSKI(context.Context, []byte, string) ([]byte, error) {
	a.stall()
	return nil, nil
}
func (a *stalledAsker) IsTrusted(context.Context, string) bool { a.stall(); return false }

// TestStalledLeaderReleasesFollowers: client A leads the download of a CRL
// whose issuer only the clients can supply, and never answers its
// SENDCERT_SKI; client B, fetching the same URL meanwhile, is not held: it
// does its own work with its own client and gets its answer.
func TestStalledLeaderReleasesFollowers(t *testing.T) {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Stall CA", "", ""), KeyType: testpki.ECDSA})
	leaf := ca.Issue(testpki.Template{Subject: testpki.Name("leaf", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: ca, NextUpdate: time.Now().Add(time.Hour)}).Build()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(der) }))
	defer srv.Close()
	e := newEnv(t) // the CA is in no store: the clients must send it
	a := &stalledAsker{entered: make(chan struct{}), release: make(chan struct{})}
	aDone := make(chan error, 1)
	go func() { aDone <- e.chk.Fetch(context.Background(), &revocation.Request{Asker: a}, srv.URL+"/ca.crl") }()
	select {
	case <-a.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("client A was never asked")
	}
	b := &fakeAsker{certs: []*testpki.Cert{ca}, trusted: true}
	bDone := make(chan error, 1)
	go func() { bDone <- e.chk.Fetch(context.Background(), &revocation.Request{Asker: b}, srv.URL+"/ca.crl") }()
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("client B: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client B is held by client A's stalled inquiry")
	}
	if st, err := e.chk.CertStatus(context.Background(), &revocation.Request{Asker: b}, leaf.Cert); err != nil || st != revocation.Valid {
		t.Fatalf("after B's load: %v %v", st, err)
	}
	// Released, A finds the CA that B's client sent.
	close(a.release)
	if err := <-aDone; err != nil {
		t.Fatalf("client A: %v", err)
	}
}
