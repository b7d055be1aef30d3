package crlcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata goldens")

// filterKeys returns n distinct entry keys of a shape.
func filterKeys(shape string, n int) [][]byte {
	keys := make([][]byte, 0, n)
	switch shape {
	case "real":
		set := testpki.RealSerials(n, 11, testpki.SortedOrder)
		for i := range n {
			keys = append(keys, appendKey(nil, nil, set.At(i)))
		}
	case "sequential":
		for i := range n {
			keys = append(keys, appendKey(nil, nil, binary.BigEndian.AppendUint32(nil, 0x10000000+2*uint32(i))))
		}
	case "indirect":
		issuer := bytes.Repeat([]byte{0xab}, 20)
		for i := range n {
			keys = append(keys, appendKey(nil, issuer, binary.BigEndian.AppendUint64(nil, uint64(i)*7919)))
		}
	case "short":
		for i := range min(n, 256) {
			keys = append(keys, appendKey(nil, nil, []byte{byte(i)}))
		}
	}
	return keys
}

// TestFilterHasEveryKey: every key added passes the filter (a miss would
// answer "not revoked" for a revoked serial), and few absent keys pass.
func TestFilterHasEveryKey(t *testing.T) {
	for _, tc := range []struct {
		shape  string
		n      int
		maxFPR float64 // 0: not checked (too few keys to say)
	}{
		{"real", 1, 0},
		{"real", 100, 0},
		{"real", 200_000, 0.02},
		{"sequential", 200_000, 0.02},
		{"indirect", 50_000, 0.02},
		{"short", 256, 0},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.shape, tc.n), func(t *testing.T) {
			keys := filterKeys(tc.shape, tc.n)
			// One run of lines for all the keys, as for one block.
			run := make([]byte, filterLinesFor(len(keys))*filterLineBytes)
			for _, k := range keys {
				filterAdd(run, keyHash(k))
			}
			for _, k := range keys {
				if !filterHas(run, keyHash(k)) {
					t.Fatalf("key %X added but not in the filter", k)
				}
			}
			// Absent keys: each key with a byte appended.
			pass := 0
			for _, k := range keys {
				if filterHas(run, keyHash(append(slices.Clip(k), 0x5a))) {
					pass++
				}
			}
			if fpr := float64(pass) / float64(len(keys)); tc.maxFPR > 0 && fpr > tc.maxFPR {
				t.Fatalf("%d of %d absent keys pass the filter (%.2f%%, want at most %.0f%%)", pass, len(keys), 100*fpr, 100*tc.maxFPR)
			}
		})
	}
}

// TestKeyHashGolden pins the filter's hash: it is part of the file format
// (changing it needs a new genMagic, or existing files would answer
// "not revoked" for listed serials).
func TestKeyHashGolden(t *testing.T) {
	var b strings.Builder
	for _, k := range [][]byte{
		{0x00},
		{0x00, 0x01},
		appendKey(nil, nil, []byte{0x10, 0x00, 0x00, 0x02}),
		appendKey(nil, nil, bytes.Repeat([]byte{0x5a}, 16)),
		appendKey(nil, nil, bytes.Repeat([]byte{0xff}, 20)),
		appendKey(nil, bytes.Repeat([]byte{0xab}, 20), []byte{0x01, 0x02, 0x03}),
	} {
		fmt.Fprintf(&b, "%X %016x %d\n", k, keyHash(k), filterLine(keyHash(k), 1000)/filterLineBytes)
	}
	golden := filepath.Join("testdata", "keyhash.golden")
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("key hashes changed:\n%s\nwant:\n%s", b.String(), want)
	}
}

// genFilePath writes a generation file of keys (with its filter) and
// returns its path.
func genFilePath(t *testing.T, keys [][]byte) string {
	path := filepath.Join(t.TempDir(), "g.blk")
	if err := os.WriteFile(path, genBytes(t, keys), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGenFileFilter: lookups through a file's filter, and a damaged
// filter.
func TestGenFileFilter(t *testing.T) {
	for _, shape := range []string{"real", "indirect"} { // indirect: every key has the same 8-byte prefix
		t.Run(shape, func(t *testing.T) { genFileFilter(t, shape) })
	}
}

func genFileFilter(t *testing.T, shape string) {
	keys := filterKeys(shape, 20_000)
	slices.SortFunc(keys, bytes.Compare)
	absent := func(k []byte) []byte { return append(slices.Clip(k), 0x5a) }
	for _, tc := range []struct {
		name     string
		edit     func(t *testing.T, b []byte) []byte
		openErr  bool
		filter   bool
		foundAll bool // every listed key found (false: the filter, emptied, rules them out)
	}{
		{name: "with filter", edit: func(_ *testing.T, b []byte) []byte { return b }, filter: true, foundAll: true},
		{name: "filter byte flipped", edit: func(_ *testing.T, b []byte) []byte {
			lo, _ := filterSpan(b)
			b[lo+100] ^= 0x10
			return b
		}, openErr: true},
		// A filter that is valid (its CRC matches) but empty: every key
		// is ruled out without a block read, which shows lookups ask it.
		{name: "empty filter, CRC matching", edit: func(_ *testing.T, b []byte) []byte {
			lo, hi := filterSpan(b)
			clear(b[lo:hi])
			binary.BigEndian.PutUint32(b[len(b)-12:], crc32.Checksum(b[lo:hi], castagnoli))
			return b
		}, filter: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.blk")
			if err := os.WriteFile(path, tc.edit(t, genBytes(t, keys)), 0o600); err != nil {
				t.Fatal(err)
			}
			g, err := openGen(path)
			if tc.openErr {
				if !errors.Is(err, errCorruptBlock) {
					t.Fatalf("open: %v, want a corrupt-file error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.release()
			if (g.filt != nil) != tc.filter {
				t.Fatalf("filter present %v, want %v", g.filt != nil, tc.filter)
			}
			sc := scratchPool.Get().(*scratch)
			defer scratchPool.Put(sc)
			for i, k := range keys {
				_, _, found, err := g.lookup(k, sc)
				if err != nil {
					t.Fatal(err)
				}
				if found != tc.foundAll {
					t.Fatalf("key %d %X: found %v, want %v", i, k, found, tc.foundAll)
				}
				if _, _, found, _ := g.lookup(absent(k), sc); found {
					t.Fatalf("absent key %X found", absent(k))
				}
			}
		})
	}
}

// filterSpan returns where a version 3 file's filter lies.
func filterSpan(b []byte) (lo, hi int) {
	t := b[len(b)-genTrailer:]
	hi = int(binary.BigEndian.Uint64(t))
	return hi - int(binary.BigEndian.Uint32(t[24:]))*filterLineBytes, hi
}

// TestReadVersion2File: a file written by the previous version
// (testdata/v2.blk: no filter, blocks without restart prefixes, made by
// genBytes at d6350d0 from RealSerials(2000, 5, SortedOrder)) is read
// as it is: every entry found, with its reason and time, in order.
func TestReadVersion2File(t *testing.T) {
	set := testpki.RealSerials(2000, 5, testpki.SortedOrder)
	var keys [][]byte
	for i := range set.Len() {
		keys = append(keys, appendKey(nil, nil, set.At(i)))
	}
	slices.SortFunc(keys, bytes.Compare)
	g, err := openGen(filepath.Join("testdata", "v2.blk"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.release()
	if !g.v2 || g.filt != nil {
		t.Fatalf("v2 %v, filter %v: want a version 2 file without filter", g.v2, g.filt != nil)
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	for i, k := range keys {
		r, at, found, err := g.lookup(k, sc)
		if err != nil || !found || r != uint16(i) || at != int64(1_600_000_000+i*1000) {
			t.Fatalf("key %d %X: reason %d at %d found %v err %v", i, k, r, at, found, err)
		}
		if _, _, found, _ := g.lookup(append(slices.Clip(k), 0x5a), sc); found {
			t.Fatalf("absent key after %X found", k)
		}
	}
	n := 0
	if err := g.each(func(k []byte, _ uint16, _ int64) error {
		if !bytes.Equal(k, keys[n]) {
			t.Fatalf("entry %d: %X, want %X", n, k, keys[n])
		}
		n++
		return nil
	}); err != nil || n != len(keys) {
		t.Fatalf("each: %d entries, %v", n, err)
	}
}
