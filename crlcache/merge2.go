package crlcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
)

// mergeTwo merges the spilled runs and the in-memory run on two
// goroutines: keys below a pivot (the median of the runs' key samples)
// into out, keys from the pivot on into an unlinked second file whose
// blocks are then appended to out. Each spilled run is read from the
// sample nearest the pivot, so neither half reads the whole run.
func (s *Staging) mergeTwo(out *genWriter) error {
	pivot := s.pivot()
	cur := s.cur
	split := sort.Search(len(cur.refs), func(i int) bool { return bytes.Compare(cur.key(&cur.refs[i]), pivot) >= 0 })
	low := []source{&memSource{r: cur, i: -1, end: split}}
	high := []source{&memSource{r: cur, i: split - 1, end: len(cur.refs)}}
	for _, sp := range s.spans {
		aEnd, bStart := sp.off+sp.n, sp.off
		for _, sm := range sp.samples {
			if bytes.Compare(sm.key, pivot) >= 0 {
				aEnd = sm.off
				break
			}
			bStart = sm.off
		}
		lo := s.fileSource(sp.off, aEnd-sp.off)
		lo.hi, lo.hiP = pivot, prefix(pivot)
		hi := s.fileSource(bStart, sp.off+sp.n-bStart)
		hi.lo, hi.loP = pivot, prefix(pivot)
		low, high = append(low, lo), append(high, hi)
	}
	hf, err := os.CreateTemp(s.c.dir, "merge-*.tmp")
	if err != nil {
		return fmt.Errorf("crlcache: creating a merge file: %w", err)
	}
	os.Remove(hf.Name())
	defer hf.Close()
	hw := newGenWriter(hf)
	if out.filt != nil {
		if hw.filt, err = newFilterIn(s.c.dir); err != nil {
			return err
		}
		defer hw.filt.release()
	}
	done := make(chan error, 1)
	go func() {
		err := merge(high, hw)
		if err == nil {
			err = hw.flushBlock()
		}
		if err == nil {
			err = hw.w.Flush()
		}
		done <- err
	}()
	lerr := merge(low, out)
	herr := <-done
	if lerr != nil {
		return lerr
	}
	if herr != nil {
		return herr
	}
	return out.appendBlocks(hf, hw)
}

// pivot is the median of the key samples of all runs.
func (s *Staging) pivot() []byte {
	var keys [][]byte
	for _, sp := range s.spans {
		for _, sm := range sp.samples {
			keys = append(keys, sm.key)
		}
	}
	for i := 0; i < len(s.cur.refs); i += sampleEvery {
		keys = append(keys, s.cur.key(&s.cur.refs[i]))
	}
	slices.SortFunc(keys, bytes.Compare)
	return append([]byte(nil), keys[len(keys)/2]...)
}

// appendBlocks appends the blocks hw wrote to f (keys above all of g's),
// their filter lines and their index entries.
func (g *genWriter) appendBlocks(f *os.File, hw *genWriter) error {
	if err := g.flushBlock(); err != nil {
		return err
	}
	if hw.blocks == 0 {
		return nil
	}
	if _, err := io.Copy(g.w, io.NewSectionReader(f, 0, hw.off)); err != nil {
		return fmt.Errorf("crlcache: writing entries: %w", err)
	}
	var base uint32
	if g.filt != nil {
		base = uint32(g.filt.total())
		if err := g.filt.appendFrom(hw.filt); err != nil {
			return err
		}
	}
	ix := hw.index
	for range hw.blocks {
		l, n := binary.Uvarint(ix)
		k := n + int(l)
		g.index = append(g.index, ix[:k]...)
		g.index = binary.BigEndian.AppendUint64(g.index, uint64(g.off)+binary.BigEndian.Uint64(ix[k:]))
		g.index = binary.BigEndian.AppendUint32(g.index, base+binary.BigEndian.Uint32(ix[k+8:]))
		ix = ix[k+12:]
	}
	g.off += hw.off
	g.blocks += hw.blocks
	g.entries += hw.entries
	return nil
}

// fileSource reads a piece of the staging file through an off-heap
// buffer freed with the staging area.
func (s *Staging) fileSource(off, n int64) *fileSource {
	buf, free := offHeap(spillBuffer)
	s.frees = append(s.frees, free)
	return &fileSource{ra: s.spill, off: off, end: off + n, buf: buf[:0]}
}
