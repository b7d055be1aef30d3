package testpki

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"time"
)

// Order is the order in which a generated CRL lists its entries.
type Order int

// Entry orders.
const (
	// RevocationOrder lists entries as real CAs do: in the order they were
	// revoked, so random serials come unsorted.
	RevocationOrder Order = iota
	// SortedOrder lists entries by ascending serial number.
	SortedOrder
	// ReverseOrder lists entries by descending serial number.
	ReverseOrder
)

// String names the order ("random", "sorted", "reverse").
func (o Order) String() string {
	switch o {
	case SortedOrder:
		return "sorted"
	case ReverseOrder:
		return "reverse"
	}
	return "random"
}

// Serials is a set of distinct serial numbers (DER INTEGER content
// octets) held in one arena, so that millions cost little memory.
type Serials struct {
	arena []byte
	offs  []uint32 // len = n+1
}

// RealSerials makes n distinct serials as real CAs make them: 16 random
// bytes (at least 64 bits of entropy), one in ten 20 bytes, with a leading
// zero byte when the high bit is set (about half), listed in order.
func RealSerials(n int, seed uint64, order Order) *Serials {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := &Serials{arena: make([]byte, 0, n*18), offs: make([]uint32, 0, n+1)}
	for range n {
		l := 16
		if rng.IntN(10) == 0 {
			l = 20
		}
		var b [21]byte
		for i := 1; i <= l; i++ {
			b[i] = byte(rng.Uint32())
		}
		if b[1] == 0 {
			b[1] = 1 // keep the encoding minimal and the length as chosen
		}
		v := b[1 : l+1]
		if b[1]&0x80 != 0 {
			v = b[:l+1] // positive INTEGER: leading zero byte
		}
		s.offs = append(s.offs, uint32(len(s.arena)))
		s.arena = append(s.arena, v...)
	}
	s.offs = append(s.offs, uint32(len(s.arena)))
	if order != RevocationOrder {
		s.sort(order == ReverseOrder)
	}
	return s
}

// sort orders the serials numerically (shorter minimal encodings are
// smaller numbers), descending when rev.
func (s *Serials) sort(rev bool) {
	idx := make([]int32, s.Len())
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int {
		x, y := s.At(int(a)), s.At(int(b))
		c := len(x) - len(y)
		if c == 0 {
			c = bytes.Compare(x, y)
		}
		if rev {
			return -c
		}
		return c
	})
	arena := make([]byte, 0, len(s.arena))
	offs := make([]uint32, 0, len(s.offs))
	for _, i := range idx {
		offs = append(offs, uint32(len(arena)))
		arena = append(arena, s.At(int(i))...)
	}
	s.arena, s.offs = arena, append(offs, uint32(len(arena)))
}

// Len returns the number of serials.
func (s *Serials) Len() int { return len(s.offs) - 1 }

// At returns serial i (do not modify).
func (s *Serials) At(i int) []byte { return s.arena[s.offs[i]:s.offs[i+1]] }

// Entry returns CRL entry i: serial i, revoked i seconds after first
// (times ascend in list order), with a reason code on most entries.
func (s *Serials) Entry(i int, first time.Time) Entry {
	reason := ReasonKeyCompromise
	switch i % 4 {
	case 1:
		reason = ReasonSuperseded
	case 2:
		reason = ReasonNone
	}
	return Entry{RawSerial: s.At(i), Time: first.Add(time.Duration(i) * time.Second), Reason: reason}
}

// Absent returns a serial of the same shape that is not in s (with very
// high probability: it is drawn from another seed).
func (s *Serials) Absent(i int) []byte {
	o := RealSerials(1, uint64(i)+0xabad1dea, RevocationOrder)
	return o.At(0)
}
