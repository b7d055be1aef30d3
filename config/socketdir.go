package config

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// zbase32Alphabet is the z-base-32 alphabet GnuPG uses for hashed socket
// directory names.
const zbase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// zbase32 encodes data in z-base-32 (no padding), as GnuPG's zb32_encode does
// for a whole number of bytes.
func zbase32(data []byte) string {
	var sb strings.Builder
	var acc uint64
	bits := 0
	for _, b := range data {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(zbase32Alphabet[(acc>>uint(bits))&31])
		}
	}
	if bits > 0 {
		sb.WriteByte(zbase32Alphabet[(acc<<uint(5-bits))&31])
	}
	return sb.String()
}

// StandardHomedir returns GnuPG's default home directory: $GNUPGHOME if set,
// otherwise ~/.gnupg.
func StandardHomedir() string {
	if h := os.Getenv("GNUPGHOME"); h != "" {
		return absClean(h)
	}
	return defaultHomedir()
}

func defaultHomedir() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, ".gnupg")
}

func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// SocketDir computes the directory that holds GnuPG's sockets for homedir,
// exactly as `gpgconf --list-dirs socketdir` does: /run/user/<uid>/gnupg
// (with a d.<zbase32(sha1(homedir))> subdirectory for a non-default homedir)
// when /run/user/<uid> exists and belongs to the user, the homedir itself
// otherwise. runRoot is normally "/run/user"; tests may point it elsewhere.
// With create set, missing directories are created with mode 0700.
func SocketDir(homedir, runRoot string, create bool) (string, error) {
	homedir = absClean(homedir)
	uid := os.Getuid()
	base := ""
	for _, root := range []string{runRoot, "/var/run/user"} {
		if root == "" {
			continue
		}
		d := filepath.Join(root, fmt.Sprint(uid))
		if st, err := os.Stat(d); err == nil && st.IsDir() && ownedBy(st, uid) {
			base = d
			break
		}
		if runRoot != "/run/user" {
			break // a test root: never fall back to the real system.
		}
	}
	if base == "" {
		return homedir, nil
	}
	dir := filepath.Join(base, "gnupg")
	if homedir != defaultHomedir() {
		sum := sha1.Sum([]byte(homedir))
		dir = filepath.Join(dir, "d."+zbase32(sum[:15]))
	}
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("creating socket directory: %w", err)
		}
	}
	return dir, nil
}
