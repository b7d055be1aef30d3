package crlcache

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const testHash = "FFFB5A4A55F394FCB58CA797FF066E8F892C3917"

// encodeV1Block is the version 1 block encoder (kept here to build old
// databases).
func encodeV1Block(serials [][]byte, reason uint16, at int64) []byte {
	dst := binary.BigEndian.AppendUint16(nil, uint16(len(serials)))
	off := 0
	for _, s := range serials {
		dst = binary.BigEndian.AppendUint16(dst, uint16(off))
		off += 1 + len(s) + 10
	}
	for _, s := range serials {
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
		dst = binary.BigEndian.AppendUint16(dst, reason)
		dst = binary.BigEndian.AppendUint64(dst, uint64(at))
	}
	return dst
}

// writeV1 creates a version 1 database with one CRL of n entries
// (serials 2i+1, three bytes) for testHash, and a damaged second record.
func writeV1(t *testing.T, dir string, n int) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		info, _ := tx.CreateBucket(bucketInfo)
		info.Put(keyVersion, []byte("1"))
		info.Put(keyNextGen, genKey(7))
		meta, _ := tx.CreateBucket(bucketV1Meta)
		m := Meta{IssuerHash: testHash, Issuer: "CN=Old", Number: "2A", Generation: 7, Entries: int64(n), ThisUpdate: time.Unix(1_700_000_000, 0).UTC()}
		v, _ := json.Marshal(&m)
		meta.Put([]byte(testHash), v)
		meta.Put([]byte("0123456789ABCDEF0123456789ABCDEF01234567"), []byte("{not json"))
		ents, _ := tx.CreateBucket(bucketV1Entries)
		gb, _ := ents.CreateBucket(genKey(7))
		for i := 0; i < n; i += 128 {
			var ss [][]byte
			for j := i; j < min(n, i+128); j++ {
				k := 2*j + 1
				ss = append(ss, []byte{byte(k >> 16), byte(k >> 8), byte(k)})
			}
			if err := gb.Put(ss[len(ss)-1], encodeV1Block(ss, 2, 1_650_000_000)); err != nil {
				return err
			}
		}
		ents.CreateBucket(genKey(3)) // an interrupted ingest's leftovers
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateV1: a database of the version 1 layout is migrated on open:
// the CRL keeps answering (it may have come from a file and cannot be
// refetched), a damaged record is dropped, the old buckets are gone and
// the file shrinks back.
func TestMigrateV1(t *testing.T) {
	dir := t.TempDir()
	const n = 100_000
	writeV1(t, dir, n)
	before, _ := os.Stat(filepath.Join(dir, FileName))
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Get(testHash)
	if !ok || m.Number != "2A" || m.Entries != n || m.Issuer != "CN=Old" {
		t.Fatalf("migrated meta %+v ok=%v", m, ok)
	}
	for _, k := range []int{0, 1, 2, 3, 2*n - 1, 2 * n, 2*n + 1} {
		e, rev, ok, err := c.Lookup(testHash, []byte{byte(k >> 16), byte(k >> 8), byte(k)})
		if err != nil || !ok || rev != (k%2 == 1 && k < 2*n) {
			t.Fatalf("serial %d: revoked=%v ok=%v err=%v", k, rev, ok, err)
		}
		if rev && (e.Reason != 2 || e.RevokedAt.Unix() != 1_650_000_000) {
			t.Fatalf("serial %d: entry %+v", k, e)
		}
	}
	if len(c.List()) != 1 {
		t.Fatalf("List after migration: %+v", c.List())
	}
	// A new CRL gets a generation above the old ones.
	st, _ := c.Begin()
	st.Add([]byte{1}, 0, time.Now())
	if err := st.Commit(Meta{IssuerHash: testHash, Number: "2B"}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := c.Get(testHash); m.Generation <= 7 {
		t.Fatalf("new generation %d reuses an old number", m.Generation)
	}
	c.Close()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketV1Meta) != nil || tx.Bucket(bucketV1Entries) != nil {
			t.Error("version 1 buckets left behind")
		}
		if v := tx.Bucket(bucketInfo).Get(keyVersion); string(v) != "2" {
			t.Errorf("version %q", v)
		}
		return nil
	})
	db.Close()
	after, _ := os.Stat(filepath.Join(dir, FileName))
	if after.Size() >= before.Size() {
		t.Errorf("database not compacted: %d bytes before, %d after", before.Size(), after.Size())
	}
}
