package crlcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

const hashA = "FFFB5A4A55F394FCB58CA797FF066E8F892C3917"

func serial(i int) []byte { return []byte{byte(i >> 16), byte(i >> 8), byte(i)} }

// load stores a CRL with serials [from, to) and CRL number num.
func load(t testing.TB, c *crlcache.Cache, num string, from, to int) error {
	t.Helper()
	st, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		if err := st.Add(serial(i), 2, time.Unix(1700000000, 0)); err != nil {
			st.Abort()
			return err
		}
	}
	return st.Commit(crlcache.Meta{IssuerHash: hashA, Issuer: "CN=A", Number: num, ThisUpdate: time.Now()}, crlcache.CommitOptions{})
}

func TestStoreLookupReplace(t *testing.T) {
	dir := t.TempDir()
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, ok, _ := c.Lookup(hashA, serial(1)); ok {
		t.Fatal("empty cache knows a CRL")
	}
	if err := load(t, c, "01", 0, 100); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		serial  int
		revoked bool
	}{{0, true}, {99, true}, {100, false}, {5000, false}}
	for _, tc := range cases {
		e, rev, ok, err := c.Lookup(hashA, serial(tc.serial))
		if err != nil || !ok || rev != tc.revoked {
			t.Errorf("serial %d: revoked=%v ok=%v err=%v", tc.serial, rev, ok, err)
		}
		if rev && (e.Reason != 2 || e.RevokedAt.Unix() != 1700000000) {
			t.Errorf("entry %+v", e)
		}
	}
	// A newer CRL replaces the old one entirely.
	if err := load(t, c, "02", 50, 150); err != nil {
		t.Fatal(err)
	}
	if _, rev, _, _ := c.Lookup(hashA, serial(10)); rev {
		t.Error("serial 10 still revoked after replacement")
	}
	if _, rev, _, _ := c.Lookup(hashA, serial(120)); !rev {
		t.Error("serial 120 not revoked after replacement")
	}
	// Rollback to an older CRL number is refused and keeps the current CRL.
	if err := load(t, c, "01", 0, 10); !errors.Is(err, crlcache.ErrRollback) || gpgerr.CodeOf(err) != gpgerr.ErrInvCRL {
		t.Fatalf("rollback: %v", err)
	}
	// Duplicate serials are refused, in one batch or across batches.
	if err := load(t, c, "03", 0, 10); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Begin()
	st.Add(serial(7), 0, time.Now())
	st.Add(serial(7), 0, time.Now())
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "04"}, crlcache.CommitOptions{}); !errors.Is(err, crlcache.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	m, _ := c.Get(hashA)
	if m.Number != "03" || m.Entries != 10 {
		t.Fatalf("after failed loads: %+v", m)
	}
	// Persistence, and a second opener fails fast.
	if err := c.Touch(hashA, time.Unix(1800000000, 0)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := crlcache.Open(dir, crlcache.Options{Timeout: 200 * time.Millisecond}); !errors.Is(err, crlcache.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("second open did not fail fast")
	}
	c.Close()
	c, err = crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, _ = c.Get(hashA)
	if m.LastRefresh.Unix() != 1800000000 || m.Number != "03" {
		t.Fatalf("reopened: %+v", m)
	}
	n := 0
	c.ForEach(hashA, func([]byte, crlcache.Entry) error { n++; return nil })
	if n != 10 {
		t.Fatalf("ForEach saw %d entries", n)
	}
	if err := c.PutOCSP([]byte("certid"), []byte("answer")); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.GetOCSP([]byte("certid")); !ok || string(v) != "answer" {
		t.Fatalf("OCSP cache: %q %v", v, ok)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := c.Lookup(hashA, serial(1)); ok || len(c.List()) != 0 {
		t.Fatal("flush left data")
	}
	if _, ok := c.GetOCSP([]byte("certid")); ok {
		t.Fatal("FLUSHCRLS left OCSP answers")
	}
}

// killEntries is the size of the unsorted CRL TestKillMidIngest's child
// ingests.
const killEntries = 1_000_000

// TestKillMidIngest kills a process that is ingesting an unsorted 1M-entry
// CRL (real-world-shaped random serials) at random moments, 20 times;
// after each kill the reopened cache must answer exactly as before the
// ingest started and hold no litter (staging files, partial generations).
func TestKillMidIngest(t *testing.T) {
	if os.Getenv("CRLCACHE_INGEST_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	restore := func() {
		c, err := crlcache.Open(dir, crlcache.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.Flush()
		if err := load(t, c, "01", 0, 1000); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	restore()
	child := func(kill time.Duration) bool {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIngestChild$", "-test.v")
		cmd.Env = append(os.Environ(), "CRLCACHE_INGEST_CHILD="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the child to have opened the cache and made its CRL.
		buf := make([]byte, 64)
		out.Read(buf)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		if kill < 0 {
			<-done
			return false
		}
		select {
		case <-done:
			return false
		case <-time.After(kill):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return true
	}
	// A first run to completion gives the length of an ingest.
	start := time.Now()
	child(-1)
	full := time.Since(start)
	restore()
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 20 {
		killed := child(time.Duration(rng.Int64N(int64(full))))
		c, err := crlcache.Open(dir, crlcache.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("run %d: reopen: %v", run, err)
		}
		assertClean(t, c)
		m, ok := c.Get(hashA)
		if !ok || m.Number != "01" || m.Entries != 1000 {
			// The child may have completed; that is fine only if it
			// committed its full CRL.
			if !(ok && m.Number == "02" && m.Entries == killEntries) {
				t.Fatalf("run %d: inconsistent meta %+v", run, m)
			}
			c.Close()
			t.Logf("run %d: ingest completed before the kill (killed=%v)", run, killed)
			restore()
			continue
		}
		for _, i := range []int{0, 999, 1000, 500000} {
			_, rev, _, err := c.Lookup(hashA, serial(i))
			if err != nil || rev != (i < 1000) {
				t.Fatalf("run %d: serial %d revoked=%v err=%v", run, i, rev, err)
			}
		}
		c.Close()
	}
}

// TestIngestChild is the child process of TestKillMidIngest.
func TestIngestChild(t *testing.T) {
	dir := os.Getenv("CRLCACHE_INGEST_CHILD")
	if dir == "" {
		t.Skip("only run as a child of TestKillMidIngest")
	}
	c, err := crlcache.Open(dir, crlcache.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	set := testpki.RealSerials(killEntries, 9, testpki.RevocationOrder)
	fmt.Println("opened " + strconv.Itoa(os.Getpid()))
	st, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range set.Len() {
		if err := st.Add(set.At(i), 2, time.Unix(1700000000+int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "02", ThisUpdate: time.Now()}, crlcache.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func BenchmarkLookup(b *testing.B) {
	c, err := crlcache.Open(b.TempDir(), crlcache.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := load(b, c, "01", 0, 100000); err != nil {
		b.Fatal(err)
	}
	s := serial(4242)
	b.ReportAllocs()
	for b.Loop() {
		if _, rev, _, _ := c.Lookup(hashA, s); !rev {
			b.Fatal("not revoked")
		}
	}
}

// BenchmarkIngest stages and commits 1M entries (ascending serials, as
// most CAs write them).
func BenchmarkIngest(b *testing.B) {
	for range b.N {
		c, err := crlcache.Open(b.TempDir(), crlcache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st, _ := c.Begin()
		var s [4]byte
		for i := range 1_000_000 {
			s[0], s[1], s[2], s[3] = byte(i>>24|0x10), byte(i>>16), byte(i>>8), byte(i)
			if err := st.Add(s[:], 2, time.Unix(1700000000, 0)); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.Commit(crlcache.Meta{IssuerHash: hashA}, crlcache.CommitOptions{}); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// TestUnsortedAcrossBatches stores a CRL whose entries arrive in random
// order over several batches (the merge path) and checks every lookup,
// then a duplicate that only shows across batches.
func TestUnsortedAcrossBatches(t *testing.T) {
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 300_000
	perm := rand.New(rand.NewPCG(3, 4)).Perm(n)
	st, _ := c.Begin()
	for _, i := range perm {
		if err := st.Add(serial(2*i+1), uint16(i%7), time.Unix(int64(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "01"}, crlcache.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*n+2; i += 997 {
		e, rev, _, err := c.Lookup(hashA, serial(i))
		if err != nil || rev != (i%2 == 1) {
			t.Fatalf("serial %d: revoked=%v err=%v", i, rev, err)
		}
		if rev && (e.Reason != uint16((i/2)%7) || e.RevokedAt.Unix() != int64(i/2)) {
			t.Fatalf("serial %d: entry %+v", i, e)
		}
	}
	var prev []byte
	count := 0
	c.ForEach(hashA, func(s []byte, _ crlcache.Entry) error {
		if prev != nil && string(prev) >= string(s) {
			t.Fatalf("ForEach out of order at %x", s)
		}
		prev = append(prev[:0], s...)
		count++
		return nil
	})
	if count != n {
		t.Fatalf("ForEach saw %d entries, want %d", count, n)
	}
	st, _ = c.Begin()
	for i := range 270_000 {
		st.Add(serial(i), 0, time.Now())
	}
	st.Add(serial(5), 0, time.Now()) // duplicate of an entry in the first batch
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "02"}, crlcache.CommitOptions{}); !errors.Is(err, crlcache.ErrDuplicate) {
		t.Fatalf("duplicate across batches: %v", err)
	}
}

// TestCorruptDatabaseMovedAside: an unreadable crls.db is kept aside and
// the cache starts empty instead of failing (no crash loop).
func TestCorruptDatabaseMovedAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, crlcache.FileName), bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	var moved string
	crlcache.CorruptionHook = func(path, aside string, cause error) { moved = aside }
	defer func() { crlcache.CorruptionHook = func(string, string, error) {} }()
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatalf("open after corruption: %v", err)
	}
	defer c.Close()
	if moved == "" {
		t.Fatal("corruption not reported")
	}
	if _, err := os.Stat(moved); err != nil {
		t.Fatalf("corrupt file not kept: %v", err)
	}
	if err := load(t, c, "01", 0, 10); err != nil {
		t.Fatal(err)
	}
}
