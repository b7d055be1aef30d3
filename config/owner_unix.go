package config

import (
	"os"
	"syscall"
)

// ownedBy reports whether the file described by st belongs to uid.
func ownedBy(st os.FileInfo, uid int) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid
}
