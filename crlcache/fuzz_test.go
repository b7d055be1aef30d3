package crlcache

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// genBytes writes a small generation file and returns its bytes.
func genBytes(t testing.TB, keys [][]byte) []byte {
	path := filepath.Join(t.TempDir(), "g.blk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gw := newGenWriter(f)
	if gw.filt, err = newFilterIn(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	defer gw.filt.release()
	for i, k := range keys {
		if err := gw.add(k, uint16(i), int64(1_600_000_000+i*1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := gw.finish(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(path)
	return b
}

func seedKeys(n int) [][]byte {
	var keys [][]byte
	for i := range n {
		keys = append(keys, []byte{0, byte(i >> 8), byte(i), 0x55})
	}
	return keys
}

// FuzzDecodeBlock feeds arbitrary bytes to the block decoder (stored
// entry blocks): lookups and listing must return entries or an error,
// never panic or loop.
func FuzzDecodeBlock(f *testing.F) {
	var bw blockWriter
	for i := range 40 {
		bw.add([]byte{0, 1, byte(i)}, uint16(i), int64(1000-i))
	}
	f.Add(append([]byte(nil), bw.finish()...), []byte{0, 1, 5})
	f.Add([]byte{}, []byte{0})
	f.Fuzz(func(t *testing.T, data, key []byte) {
		b, err := parseBlock(data)
		if err != nil {
			return
		}
		b.find(key, nil)
		n := 0
		b.each(func(k []byte, r uint16, at int64) error {
			n++
			return nil
		})
		if n > len(data) {
			t.Fatalf("%d entries from %d bytes", n, len(data))
		}
	})
}

// FuzzDecodeGenFile feeds arbitrary bytes to the generation file reader
// (trailer, index, blocks).
func FuzzDecodeGenFile(f *testing.F) {
	f.Add(genBytes(f, seedKeys(700)), []byte{0, 1, 2, 0x55})
	f.Add(genBytes(f, nil), []byte{0})
	if v2, err := os.ReadFile(filepath.Join("testdata", "v2.blk")); err == nil {
		f.Add(v2, []byte{0, 1, 2})
	} else {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data, key []byte) {
		g, err := readIndex(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		g.f = nil
		r := bytes.NewReader(data)
		for i := range g.blocks() {
			n := g.offs[i+1] - g.offs[i]
			if n <= 0 || n > 1<<20 {
				continue
			}
			buf := make([]byte, n)
			r.ReadAt(buf, g.offs[i])
			if b, err := parseBlock(buf); err == nil {
				b.find(key, nil)
				b.each(func([]byte, uint16, int64) error { return nil })
			}
		}
		// The lookup path over a mapping (here the input itself): the
		// second lookup of a block skips its CRC once checked.
		end := g.offs[len(g.offs)-1]
		g.m = data[:end+g.filtLen]
		if g.filtLen > 0 {
			g.filt = g.m[end:]
		}
		g.checked = make([]atomic.Uint64, (g.blocks()+63)/64)
		sc := scratchPool.Get().(*scratch)
		defer scratchPool.Put(sc)
		for range 2 {
			g.lookup(key, sc)
		}
	})
}

// FuzzDecodeMeta feeds arbitrary keys and values to the CRL record
// decoder.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(testHash), []byte(`{"hash":"`+testHash+`","gen":3,"entries":10}`))
	f.Add([]byte(testHash+"/"+testHash+"/delta"), []byte(`{"hash":"`+testHash+`","scope":"`+testHash+`","delta":true,"gen":1}`))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		m, err := decodeMeta(k, v)
		if err == nil && m.ID().Key() != string(k) {
			t.Fatalf("record %q decoded into slot %q", k, m.ID().Key())
		}
	})
}

// FuzzDecodeV1Block feeds arbitrary bytes to the version 1 block decoder
// used by the migration.
func FuzzDecodeV1Block(f *testing.F) {
	f.Add(encodeV1Block([][]byte{{1}, {2, 3}}, 2, 99))
	f.Fuzz(func(t *testing.T, data []byte) {
		legacyEach(data, func([]byte, uint16, int64) error { return nil })
	})
}
