package fetchcrl

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// state is one <statedir>/<alias>.<i>.state file, kept as the strings
// fetch-crl writes so that keys this implementation does not know survive
// (the files are shared with Perl fetch-crl).
type state map[string]string

// int64 reads a numeric key; a missing or damaged value is 0 (no state).
func (s state) int64(k string) int64 {
	n, err := strconv.ParseInt(s[k], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func (s state) setInt(k string, v int64) { s[k] = strconv.FormatInt(v, 10) }

func (t *taRun) statePath(i int) string {
	if t.set.Statedir == "" {
		return ""
	}
	return filepath.Join(t.set.Statedir, fmt.Sprintf("%s.%d.state", t.a.Alias, i))
}

// loadState reads the state of every index; without state (or without an
// mtime) the mtime is inferred from existing output files, else now.
func (t *taRun) loadState() {
	t.states = make([]state, len(t.a.URLs))
	t.crls = make([]*verified, len(t.a.URLs))
	for i := range t.a.URLs {
		st := state{}
		if p := t.statePath(i); p != "" {
			tiny := Tiny{}
			if err := ReadTinyFile(p, tiny, nil); err == nil {
				for k, v := range tiny[t.a.Alias] {
					st[k] = v
				}
			}
		}
		if st["mtime"] == "" {
			st.setInt("mtime", t.inferMtime(i))
		}
		t.states[i] = st
	}
}

// inferMtime is the mtime of the first existing output file of index i
// (fetch-crl's names, in its order of directories), else now.
func (t *taRun) inferMtime(i int) int64 {
	tokens := t.tokens(i)
	names := []string{expand(t.set.NameTemplateDER, tokens), expand(t.set.NameTemplatePEM, tokens),
		fmt.Sprintf("%s.r%d", t.a.Alias, i), fmt.Sprintf("%s.r%d", t.a.Name, i)}
	s := t.s
	for _, dir := range []string{s.Output, s.outputs["der"], s.outputs["pem"], s.outputs["nss"], s.outputs["openssl"]} {
		if dir == "" {
			continue
		}
		for _, n := range names {
			if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
				mt := fi.ModTime().Unix()
				t.log.Verbose(3, "Inferred mtime for %s is %d", t.a.Alias, mt)
				return mt
			}
		}
	}
	return t.r.Now().Unix()
}

// tokens are the substitutions of index i's URLs and file names.
func (t *taRun) tokens(i int) map[string]string {
	return map[string]string{"@R@": strconv.Itoa(i), "@ALIAS@": t.a.Alias, "@ANCHORNAME@": t.a.Name, "@STATUS@": t.a.Status}
}

// record stores what was installed for index i in its state.
func (t *taRun) record(i int, v *verified) {
	st := t.states[i]
	now := t.r.Now().Unix()
	st["alias"] = t.a.Alias
	st["index"] = strconv.Itoa(i)
	st["b64data"] = base64.StdEncoding.EncodeToString(v.got.raw)
	st.setInt("freshuntil", v.got.freshUntil)
	st["issuer"] = opensslOneline(v.info.RawIssuer)
	st.setInt("lastmod", v.got.lastMod)
	st.setInt("lastupdate", v.info.ThisUpdate.Unix())
	st.setInt("nextupdate", v.info.NextUpdate.Unix())
	st.setInt("retrievaltime", now)
	sum := sha1.Sum(v.der)
	st["sha1fp"] = colonHex(sum[:])
	st["sourceurl"] = v.got.source
	st.setInt("sum", int64(perlSum(v.got.raw)))
	if v.got.etag != "" {
		st["etag"] = v.got.etag
	} else {
		delete(st, "etag")
	}
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// perlSum is unpack("%32C*", data) % 65535, fetch-crl's state checksum.
func perlSum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s % 65535
}

// saveState writes every index's state (non-fatal when there is no
// statedir, unlike fetch-crl, whose per-anchor postexec then never ran).
func (t *taRun) saveState() bool {
	if t.set.Statedir == "" {
		return true
	}
	ok := true
	for i, st := range t.states {
		p := t.statePath(i)
		var buf bytes.Buffer
		WriteSection(&buf, t.a.Alias, st)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, buf.Bytes()) {
			continue // unchanged
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
			// An unwritable statedir is silently skipped, as in fetch-crl.
			ok = ok && errors.Is(err, os.ErrPermission)
			continue
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			continue
		}
		t.log.Verbose(5, "State saved in %s", p)
	}
	return ok
}
