package crlcache

import (
	"syscall"
	"unsafe"
)

// The sort buffers of an ingest (two runs and the radix scratch) live
// outside the Go heap, in anonymous mappings freed when the ingest ends:
// the garbage collector's headroom (GOGC) would otherwise double them in
// the daemon's peak RSS. They hold no pointers.

// offHeap returns n zeroed bytes outside the Go heap, or from the heap
// when mapping fails; free releases them.
func offHeap(n int) (b []byte, free func()) {
	m, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, n), func() {}
	}
	return m, func() { syscall.Munmap(m) }
}

// offHeapRefs returns a slice of n refs outside the Go heap.
func offHeapRefs(n int) ([]ref, func()) {
	b, free := offHeap(n * int(unsafe.Sizeof(ref{})))
	return unsafe.Slice((*ref)(unsafe.Pointer(unsafe.SliceData(b))), n)[:0], free
}

// offHeapScratch returns the sort scratch of an ingest: room for n refs,
// and the same memory as bytes, enough for the spilled records of a run
// of n entries (run.spill).
func offHeapScratch(n int) ([]ref, []byte, func()) {
	size := max(n*int(unsafe.Sizeof(ref{})), n*(runKeyBytes+maxRecordOverhead)+8)
	b, free := offHeap(size)
	return unsafe.Slice((*ref)(unsafe.Pointer(unsafe.SliceData(b))), n)[:0], b, free
}
