package crlcache_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

type want struct {
	reason uint16
	at     int64
}

// ingest stores entries (in the given order) as the base CRL of hashA.
func ingest(t testing.TB, c *crlcache.Cache, num string, serials [][]byte) error {
	t.Helper()
	st, err := c.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range serials {
		if err := st.Add(s, uint16(i%9), time.Unix(1_500_000_000+int64(i), 0)); err != nil {
			st.Abort()
			return err
		}
	}
	return st.Commit(crlcache.Meta{IssuerHash: hashA, Number: num, ThisUpdate: time.Now()}, crlcache.CommitOptions{})
}

// randomSerials makes n distinct serials of 1..21 bytes, one in forty up
// to 255, many sharing prefixes (the hard case for prefix compression and
// pivots).
func randomSerials(rng *rand.Rand, n int) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	for len(out) < n {
		l := 1 + rng.IntN(21)
		if rng.IntN(40) == 0 {
			l = 22 + rng.IntN(234)
		}
		s := make([]byte, l)
		for i := range s {
			s[i] = byte(rng.IntN(4)) // few distinct bytes: long shared prefixes
			if rng.IntN(3) == 0 {
				s[i] = byte(rng.Uint32())
			}
		}
		if !seen[string(s)] {
			seen[string(s)] = true
			out = append(out, s)
		}
	}
	return out
}

func ordered(serials [][]byte, order string) [][]byte {
	out := slices.Clone(serials)
	switch order {
	case "sorted":
		slices.SortFunc(out, bytes.Compare)
	case "reverse":
		slices.SortFunc(out, func(a, b []byte) int { return bytes.Compare(b, a) })
	}
	return out
}

// checkAgainst compares every lookup and the full listing with the map.
func checkAgainst(t *testing.T, c *crlcache.Cache, m map[string]want, absent [][]byte) {
	t.Helper()
	for s, w := range m {
		e, rev, ok, err := c.Lookup(hashA, []byte(s))
		if err != nil || !ok || !rev || e.Reason != w.reason || e.RevokedAt.Unix() != w.at {
			t.Fatalf("serial %X: entry %+v revoked=%v ok=%v err=%v, want %+v", s, e, rev, ok, err, w)
		}
	}
	for _, s := range absent {
		if _, ok := m[string(s)]; ok {
			continue
		}
		if _, rev, ok, err := c.Lookup(hashA, s); err != nil || !ok || rev {
			t.Fatalf("absent serial %X: revoked=%v ok=%v err=%v", s, rev, ok, err)
		}
	}
	var prev []byte
	n := 0
	err := c.ForEach(hashA, func(s []byte, e crlcache.Entry) error {
		if n > 0 && bytes.Compare(prev, s) >= 0 {
			return fmt.Errorf("out of order at %X", s)
		}
		if w, ok := m[string(s)]; !ok || w.reason != e.Reason || w.at != e.RevokedAt.Unix() {
			return fmt.Errorf("listed %X %+v, want %+v (%v)", s, e, w, ok)
		}
		prev = append(prev[:0], s...)
		n++
		return nil
	})
	if err != nil || n != len(m) {
		t.Fatalf("ForEach: %d entries, want %d: %v", n, len(m), err)
	}
}

// TestIngestEveryOrderMatchesMap is a property test: for random sets of
// serials in sorted, reverse and random order, through one run, several
// spilled runs and the two-way merge, every lookup and the listing agree
// with a map.
func TestIngestEveryOrderMatchesMap(t *testing.T) {
	defer crlcache.SetRunSize(500, 16)()
	rng := rand.New(rand.NewPCG(11, 12))
	for round, n := range []int{1, 2, 17, 499, 500, 501, 1000, 2500, 7777} {
		serials := randomSerials(rng, n)
		absent := randomSerials(rng, 300)
		for _, order := range []string{"random", "sorted", "reverse"} {
			t.Run(fmt.Sprintf("n=%d/%s", n, order), func(t *testing.T) {
				c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				in := ordered(serials, order)
				m := map[string]want{}
				for i, s := range in {
					m[string(s)] = want{uint16(i % 9), 1_500_000_000 + int64(i)}
				}
				if err := ingest(t, c, fmt.Sprintf("%02X", round+1), in); err != nil {
					t.Fatal(err)
				}
				checkAgainst(t, c, m, absent)
				if got, _ := c.Get(hashA); got.Entries != int64(n) {
					t.Fatalf("meta counts %d entries, want %d", got.Entries, n)
				}
			})
		}
	}
}

// TestIngestRealShapes: real-world-shaped serials (random 16/20 bytes,
// leading zero bytes) with the default run size: 120k entries (three
// runs, two spilled) in three orders give the same answers.
func TestIngestRealShapes(t *testing.T) {
	n := 120_000
	if testing.Short() {
		n = 50_000
	}
	for _, order := range []testpki.Order{testpki.RevocationOrder, testpki.SortedOrder, testpki.ReverseOrder} {
		t.Run(order.String(), func(t *testing.T) {
			set := testpki.RealSerials(n, 5, order)
			c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			in := make([][]byte, set.Len())
			m := map[string]want{}
			for i := range in {
				in[i] = set.At(i)
				m[string(in[i])] = want{uint16(i % 9), 1_500_000_000 + int64(i)}
			}
			if err := ingest(t, c, "01", in); err != nil {
				t.Fatal(err)
			}
			var absent [][]byte
			for i := range 200 {
				absent = append(absent, set.Absent(i))
			}
			checkAgainst(t, c, m, absent)
		})
	}
}

// TestDuplicatesRefusedInAnyOrder: a serial listed twice is refused
// whether the two copies meet in one run, in different runs, or on both
// sides of the merge pivot, and the cached CRL stays in service.
func TestDuplicatesRefusedInAnyOrder(t *testing.T) {
	defer crlcache.SetRunSize(500, 16)()
	rng := rand.New(rand.NewPCG(21, 22))
	serials := randomSerials(rng, 3000)
	for _, order := range []string{"random", "sorted", "reverse"} {
		for _, pos := range []struct{ a, b int }{{0, 1}, {10, 400}, {3, 1700}, {0, 2999}, {1499, 1500}, {2998, 2999}} {
			t.Run(fmt.Sprintf("%s/%d-%d", order, pos.a, pos.b), func(t *testing.T) {
				c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if err := ingest(t, c, "01", [][]byte{{1}, {2}}); err != nil {
					t.Fatal(err)
				}
				in := ordered(serials, order)
				in[pos.b] = in[pos.a]
				if err := ingest(t, c, "02", in); !errors.Is(err, crlcache.ErrDuplicate) {
					t.Fatalf("duplicate at %d and %d: %v", pos.a, pos.b, err)
				}
				checkAgainst(t, c, map[string]want{"\x01": {0, 1_500_000_000}, "\x02": {1, 1_500_000_001}}, nil)
				assertClean(t, c)
			})
		}
	}
}

// TestSeveralCRLsPerIssuer: a base CRL, its delta, a partitioned CRL and
// an indirect CRL of another issuer live side by side; each answers for
// its own slot and CRLsFor finds every CRL that speaks for an issuer.
func TestSeveralCRLsPerIssuer(t *testing.T) {
	const hashB = "0123456789ABCDEF0123456789ABCDEF01234567"
	const scope = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put := func(m crlcache.Meta, own [][]byte, forB [][]byte) {
		t.Helper()
		st, _ := c.Begin()
		for _, s := range own {
			if err := st.Add(s, 2, time.Unix(1_600_000_000, 0)); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range forB {
			if err := st.AddFor(hashB, s, 0x100, time.Unix(1_600_000_001, 0)); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Commit(m, crlcache.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(crlcache.Meta{IssuerHash: hashA, Number: "05"}, [][]byte{{1}, {2}}, nil)
	put(crlcache.Meta{IssuerHash: hashA, Number: "06", Delta: true, BaseNumber: "05"}, [][]byte{{3}}, nil)
	put(crlcache.Meta{IssuerHash: hashA, Number: "07", Scope: scope, IDP: []byte{0x30, 0}}, [][]byte{{4}}, [][]byte{{1}, {9}})
	// An older base CRL is still refused in its own slot only.
	st, _ := c.Begin()
	if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: "04"}, crlcache.CommitOptions{}); !errors.Is(err, crlcache.ErrRollback) {
		t.Fatalf("rollback of the base CRL: %v", err)
	}
	cases := []struct {
		id      crlcache.CRLID
		issuer  string
		serial  byte
		revoked bool
	}{
		{crlcache.BaseID(hashA), hashA, 1, true},
		{crlcache.BaseID(hashA), hashA, 3, false},
		{crlcache.CRLID{Issuer: hashA, Delta: true}, hashA, 3, true},
		{crlcache.CRLID{Issuer: hashA, Delta: true}, hashA, 1, false},
		{crlcache.CRLID{Issuer: hashA, Scope: scope}, hashA, 4, true},
		{crlcache.CRLID{Issuer: hashA, Scope: scope}, hashA, 1, false},
		{crlcache.CRLID{Issuer: hashA, Scope: scope}, hashB, 1, true},
		{crlcache.CRLID{Issuer: hashA, Scope: scope}, hashB, 9, true},
		{crlcache.CRLID{Issuer: hashA, Scope: scope}, hashB, 4, false},
	}
	for _, tc := range cases {
		r, ok, err := c.LookupIn(tc.id, tc.issuer, []byte{tc.serial})
		if err != nil || !ok || r.Revoked != tc.revoked || r.Meta.ID() != tc.id {
			t.Errorf("%s for %s serial %d: %+v ok=%v err=%v", tc.id.Key(), tc.issuer[:4], tc.serial, r, ok, err)
		}
	}
	if got := c.CRLsFor(hashA); len(got) != 3 {
		t.Errorf("CRLsFor(A) = %d CRLs, want 3", len(got))
	}
	got := c.CRLsFor(hashB)
	if len(got) != 1 || got[0].Scope != scope || !slices.Equal(got[0].Indirect, []string{hashB}) {
		t.Errorf("CRLsFor(B) = %+v", got)
	}
	if r, _, _ := c.LookupIn(crlcache.CRLID{Issuer: hashA, Scope: scope}, hashB, []byte{9}); r.Entry.Reason != 0x100 {
		t.Errorf("indirect entry reason %#x", r.Entry.Reason)
	}
	var listed []string
	c.ForEachID(crlcache.CRLID{Issuer: hashA, Scope: scope}, func(ci string, s []byte, _ crlcache.Entry) error {
		listed = append(listed, fmt.Sprintf("%s:%X", ci[:4], s))
		return nil
	})
	if want := []string{"FFFB:04", "0123:01", "0123:09"}; !slices.Equal(listed, want) {
		t.Errorf("ForEachID = %v, want %v", listed, want)
	}
	if err := c.Drop(crlcache.CRLID{Issuer: hashA, Delta: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.GetID(crlcache.CRLID{Issuer: hashA, Delta: true}); ok {
		t.Fatal("dropped delta CRL still cached")
	}
	assertClean(t, c)
}

// assertClean checks that the cache directory holds the database and the
// entry files of the cached CRLs, nothing else.
func assertClean(t *testing.T, c *crlcache.Cache) {
	t.Helper()
	want := map[string]bool{crlcache.FileName: true}
	for _, m := range c.List() {
		want[fmt.Sprintf("crl-%016x.blk", m.Generation)] = true
	}
	ents, err := os.ReadDir(filepath.Dir(c.Path()))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if !want[e.Name()] {
			got = append(got, e.Name())
		}
		delete(want, e.Name())
	}
	if len(got) > 0 || len(want) > 0 {
		t.Fatalf("cache directory: unexpected %v, missing %v", got, want)
	}
}

// TestCheckIsOneSnapshot: while CRLs that list serial 7 (even numbers)
// and CRLs that do not (odd numbers) replace each other, every Check
// pairs the Meta with the entries of that same CRL (issue 10 §2).
func TestCheckIsOneSnapshot(t *testing.T) {
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			r, ok, err := c.Check(hashA, []byte{7})
			if err != nil {
				done <- err
				return
			}
			if !ok {
				continue
			}
			var num int
			fmt.Sscanf(r.Meta.Number, "%x", &num)
			if r.Revoked != (num%2 == 0) {
				done <- fmt.Errorf("CRL number %s paired with revoked=%v", r.Meta.Number, r.Revoked)
				return
			}
		}
	}()
	for i := 1; i <= 60; i++ {
		st, _ := c.Begin()
		st.Add([]byte{9}, 0, time.Now())
		if i%2 == 0 {
			st.Add([]byte{7}, 0, time.Now())
		}
		if err := st.Commit(crlcache.Meta{IssuerHash: hashA, Number: fmt.Sprintf("%02X", i)}, crlcache.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFailedIngestLeavesNothing: a CRL that fails after its entries were
// staged and spilled (a bad signature, a stream cut off, a parse error:
// the caller aborts) leaves no file and no database growth behind.
func TestFailedIngestLeavesNothing(t *testing.T) {
	defer crlcache.SetRunSize(500, 16)()
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fi0, _ := os.Stat(c.Path())
	for range 20 {
		st, _ := c.Begin()
		for i := range 20000 {
			st.Add(serial(i), 0, time.Now())
		}
		st.Abort()
	}
	assertClean(t, c)
	fi1, _ := os.Stat(c.Path())
	if fi1.Size() != fi0.Size() {
		t.Fatalf("database grew from %d to %d bytes after aborted ingests", fi0.Size(), fi1.Size())
	}
}

// TestReloadDuringCommits: Reload (SIGHUP) while CRLs are committed loses
// none of them and leaks no file.
func TestReloadDuringCommits(t *testing.T) {
	c, err := crlcache.Open(t.TempDir(), crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				if err := c.Reload(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := range 40 {
		st, _ := c.Begin()
		st.Add([]byte{byte(i)}, 0, time.Now())
		h := fmt.Sprintf("%040X", i+1)
		if err := st.Commit(crlcache.Meta{IssuerHash: h, Number: "01"}, crlcache.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	if n := len(c.List()); n != 40 {
		t.Fatalf("%d CRLs cached after reloads, want 40", n)
	}
	for i := range 40 {
		if _, rev, ok, err := c.Lookup(fmt.Sprintf("%040X", i+1), []byte{byte(i)}); err != nil || !ok || !rev {
			t.Fatalf("CRL %d: revoked=%v ok=%v err=%v", i, rev, ok, err)
		}
	}
	assertClean(t, c)
}
