package crlcache_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crlcache"
)

// hooks records the repairs the cache reports during a test.
type hooks struct {
	mu     sync.Mutex
	events []string
}

func watchHooks(t *testing.T) *hooks {
	h := &hooks{}
	oc, od := crlcache.CorruptionHook, crlcache.DamageHook
	crlcache.CorruptionHook = func(path, aside string, cause error) { h.add("aside " + filepath.Base(aside)) }
	crlcache.DamageHook = func(what, path string, cause error) { h.add(what) }
	t.Cleanup(func() { crlcache.CorruptionHook, crlcache.DamageHook = oc, od })
	return h
}

func (h *hooks) add(s string) {
	h.mu.Lock()
	h.events = append(h.events, s)
	h.mu.Unlock()
}

func (h *hooks) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.events, "; ")
}

// filledCache makes a cache with a CRL and enough OCSP answers to span
// many database pages, and returns its directory.
func filledCache(t *testing.T) string {
	dir := t.TempDir()
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := load(t, c, "01", 0, 5000); err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1500)
	for i := range 400 {
		if err := c.PutOCSP([]byte(fmt.Sprintf("certid-%06d", i)), val); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	return dir
}

// usable checks that an opened cache works: a load and a lookup.
func usable(t *testing.T, c *crlcache.Cache) {
	t.Helper()
	if err := load(t, c, "09", 0, 10); err != nil {
		t.Fatalf("load after repair: %v", err)
	}
	if _, rev, ok, err := c.Lookup(hashA, serial(3)); err != nil || !ok || !rev {
		t.Fatalf("lookup after repair: revoked=%v ok=%v err=%v", rev, ok, err)
	}
}

// TestTruncatedDatabase: crls.db cut to half (GnuPG-era finding: SIGSEGV
// at every start) is moved aside and the cache starts empty.
func TestTruncatedDatabase(t *testing.T) {
	h := watchHooks(t)
	dir := filledCache(t)
	db := filepath.Join(dir, crlcache.FileName)
	fi, _ := os.Stat(db)
	if err := os.Truncate(db, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatalf("open truncated: %v", err)
	}
	defer c.Close()
	if !strings.Contains(h.String(), "aside crls.db.corrupt-") {
		t.Fatalf("truncation not reported: %s", h)
	}
	if _, ok := c.Get(hashA); ok {
		t.Fatal("a CRL survived from the truncated database")
	}
	usable(t, c)
}

// TestRandomlyDamagedDatabase overwrites pieces of crls.db (meta,
// freelist, branch and leaf pages alike) at random; every open must give
// a working cache, never a panic or a fault.
func TestRandomlyDamagedDatabase(t *testing.T) {
	watchHooks(t)
	orig := filledCache(t)
	data, err := os.ReadFile(filepath.Join(orig, crlcache.FileName))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := filepath.Glob(filepath.Join(orig, "crl-*.blk"))
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 40 {
		dir := t.TempDir()
		bad := append([]byte(nil), data...)
		off := rng.IntN(len(bad) - 600)
		if i < 8 {
			off = i * 4096 / 2 // the meta pages and the first pages
		}
		for j := range 512 {
			bad[off+j] = byte(rng.Uint32())
		}
		os.WriteFile(filepath.Join(dir, crlcache.FileName), bad, 0o600)
		b, _ := os.ReadFile(blk[0])
		os.WriteFile(filepath.Join(dir, filepath.Base(blk[0])), b, 0o600)
		c, err := crlcache.Open(dir, crlcache.Options{})
		if err != nil {
			t.Fatalf("damage at %d: open: %v", off, err)
		}
		for k := range 50 {
			c.GetOCSP([]byte(fmt.Sprintf("certid-%06d", k*8)))
		}
		usable(t, c)
		c.Close()
	}
}

// TestDamagedEntriesDropOneCRL: a CRL whose entry file is damaged, found
// at open or by a lookup, is dropped (refetched on next use); the others
// keep answering and nothing errors forever.
func TestDamagedEntriesDropOneCRL(t *testing.T) {
	h := watchHooks(t)
	dir := t.TempDir()
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := load(t, c, "01", 0, 50000); err != nil {
		t.Fatal(err)
	}
	m, _ := c.Get(hashA)
	path := filepath.Join(dir, fmt.Sprintf("crl-%016x.blk", m.Generation))
	// Damage a block in place while the file is open.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("XXXXXXXX"), 10)
	f.Close()
	_, _, ok, err := c.Lookup(hashA, serial(1))
	if err != nil || ok {
		t.Fatalf("lookup in a damaged block: ok=%v err=%v (want: not cached)", ok, err)
	}
	if _, ok := c.Get(hashA); ok {
		t.Fatal("damaged CRL still cached")
	}
	if !strings.Contains(h.String(), "damaged") {
		t.Fatalf("not reported: %s", h)
	}
	usable(t, c)
	c.Close()
	// Damage found at open: the index of the file is cut off.
	m, _ = func() (crlcache.Meta, bool) {
		c, _ := crlcache.Open(dir, crlcache.Options{})
		defer c.Close()
		return c.Get(hashA)
	}()
	path = filepath.Join(dir, fmt.Sprintf("crl-%016x.blk", m.Generation))
	fi, _ := os.Stat(path)
	os.Truncate(path, fi.Size()-5)
	c, err = crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.Get(hashA); ok {
		t.Fatal("CRL with a truncated entry file still cached")
	}
	assertClean(t, c)
	usable(t, c)
}

// TestEntryFileTruncatedWhileOpen: lookups read entry files through a
// mapping; a file cut short under it (by someone else: committed files
// are never rewritten) must give a read error, dropping that CRL, not a
// SIGBUS that kills the daemon.
func TestEntryFileTruncatedWhileOpen(t *testing.T) {
	h := watchHooks(t)
	dir := t.TempDir()
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := load(t, c, "01", 0, 50000); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := c.Lookup(hashA, serial(49999)); err != nil || !ok {
		t.Fatalf("lookup before: ok=%v err=%v", ok, err)
	}
	m, _ := c.Get(hashA)
	path := filepath.Join(dir, fmt.Sprintf("crl-%016x.blk", m.Generation))
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, _, ok, err := c.Lookup(hashA, serial(49999))
	if err != nil || ok {
		t.Fatalf("lookup in a truncated file: ok=%v err=%v (want: not cached)", ok, err)
	}
	if _, ok := c.Get(hashA); ok {
		t.Fatal("CRL with a truncated entry file still cached")
	}
	if !strings.Contains(h.String(), "damaged") {
		t.Fatalf("not reported: %s", h)
	}
	usable(t, c)
}

// TestUnusableCacheDirectory: a cache directory that cannot be used (here
// a file stands where it should be; mode 000 for a non-root user is the
// same) gives a temporary cache: nothing is cached at first, loads work,
// nothing is kept, and the daemon runs instead of failing.
func TestUnusableCacheDirectory(t *testing.T) {
	h := watchHooks(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "crls.d")
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !c.Temporary() || !strings.Contains(h.String(), "temporary cache") {
		t.Fatalf("temporary=%v events=%s", c.Temporary(), h)
	}
	if _, _, ok, _ := c.Lookup(hashA, serial(1)); ok {
		t.Fatal("temporary cache knows a CRL")
	}
	usable(t, c)
	tmp := filepath.Dir(c.Path())
	c.Close()
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary cache kept: %v", err)
	}
	if os.Geteuid() != 0 {
		d2 := filepath.Join(parent, "locked")
		os.Mkdir(d2, 0o700)
		c, _ := crlcache.Open(d2, crlcache.Options{})
		c.Close()
		os.Chmod(d2, 0)
		defer os.Chmod(d2, 0o700)
		c, err := crlcache.Open(d2, crlcache.Options{Timeout: time.Second})
		if err != nil || !c.Temporary() {
			t.Fatalf("mode 000: temporary=%v err=%v", c != nil && c.Temporary(), err)
		}
		c.Close()
	}
}

// TestDatabaseDamagedAtRunTime: crls.db is overwritten while the cache
// is open; the next database access faults or panics inside bbolt, the
// cache rebuilds the database from memory and keeps answering.
func TestDatabaseDamagedAtRunTime(t *testing.T) {
	h := watchHooks(t)
	dir := filledCache(t)
	c, err := crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fi, _ := os.Stat(c.Path())
	junk := make([]byte, fi.Size()-8192)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	f, _ := os.OpenFile(c.Path(), os.O_WRONLY, 0)
	f.WriteAt(junk, 8192) // every page but the two meta pages
	f.Close()
	for k := range 400 {
		c.GetOCSP([]byte(fmt.Sprintf("certid-%06d", k)))
		c.PutOCSP([]byte(fmt.Sprintf("new-%06d", k)), []byte("x"))
	}
	c.Touch(hashA, time.Now())
	if _, rev, ok, err := c.Lookup(hashA, serial(3)); err != nil || !ok || !rev {
		t.Fatalf("lookup after run-time damage: revoked=%v ok=%v err=%v (events: %s)", rev, ok, err, h)
	}
	usable(t, c)
	if !strings.Contains(h.String(), "rebuilt from memory") {
		t.Fatalf("repair not reported: %s", h)
	}
	c.Close()
	c, err = crlcache.Open(dir, crlcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := c.Get(hashA); !ok || m.Number != "09" {
		t.Fatalf("rebuilt database lost the CRL: %+v %v", m, ok)
	}
	c.Close()
}
