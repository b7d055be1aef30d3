package crlcache

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
)

// Entry files are immutable once committed, so lookups read them through
// a read-only shared mapping instead of a pread per lookup: no system
// call, no copy, and the pages are the page cache's (clean, reclaimable,
// shared with any other reader). Only the blocks are mapped, not the
// index (read once into memory at open). A file that shrinks under the
// mapping (someone truncated it) makes the next access fault; lookups
// run with debug.SetPanicOnFault, and the fault becomes a read error
// (the CRL is then dropped and refetched, as for a checksum mismatch).

// mapGen maps the first size bytes of f, or returns nil (the caller then
// uses pread) when the file is empty or cannot be mapped.
func mapGen(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return m
}

// unmapGen releases a mapping made by mapGen.
func unmapGen(m []byte) {
	if m != nil {
		syscall.Munmap(m)
	}
}

// faultAsError is deferred by readers of a mapping with the previous
// SetPanicOnFault setting: it restores it and turns a memory fault into
// an error in *err; other panics go on.
func faultAsError(old bool, path string, err *error) {
	debug.SetPanicOnFault(old)
	r := recover()
	if r == nil {
		return
	}
	if re, ok := r.(runtime.Error); ok && isFault(re) {
		*err = fmt.Errorf("crlcache: reading %s: %v: %w", path, re, errCorruptBlock)
		return
	}
	panic(r)
}

// isFault reports whether a runtime error is a memory fault (the kind
// SetPanicOnFault turns into a panic), which carries the faulting address.
func isFault(re runtime.Error) bool {
	_, ok := re.(interface{ Addr() uintptr })
	return ok
}
