package fetchcrl

import (
	"errors"
	"fmt"
	"io"
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
	t.data = make([]stateData, len(t.a.URLs))
	for i := range t.a.URLs {
		st := state{}
		if p := t.statePath(i); p != "" {
			if kv, data, err := readState(p, t.a.Alias); err == nil {
				st, t.data[i] = kv, data
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
	if f := t.data[i].file; f != nil {
		f.Close() // the old state's b64data is replaced
	}
	t.data[i] = stateData{body: v.got.raw}
	st.setInt("freshuntil", v.got.freshUntil)
	st["issuer"] = opensslOneline(v.info.RawIssuer)
	st.setInt("lastmod", v.got.lastMod)
	st.setInt("lastupdate", v.info.ThisUpdate.Unix())
	st.setInt("nextupdate", v.info.NextUpdate.Unix())
	st.setInt("retrievaltime", now)
	st["sha1fp"] = colonHex(v.src.sha1[:])
	st["sourceurl"] = v.got.source
	st.setInt("sum", int64(v.got.raw.perlSum()))
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

// saveState writes every index's state (non-fatal when there is no
// statedir, unlike fetch-crl, whose per-anchor postexec then never ran).
func (t *taRun) saveState() bool {
	if t.set.Statedir == "" {
		return true
	}
	ok := true
	for i, st := range t.states {
		p := t.statePath(i)
		tmp := p + ".tmp"
		data := t.data[i]
		err := writeFile(tmp, 0o644, func(w io.Writer) error { return writeState(w, t.a.Alias, st, data) })
		if err != nil {
			os.Remove(tmp)
			// An unwritable statedir is silently skipped, as in fetch-crl.
			ok = ok && errors.Is(err, os.ErrPermission)
			continue
		}
		if sameContent(p, copyFile(tmp)) {
			os.Remove(tmp)
			continue // unchanged
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			continue
		}
		t.log.Verbose(5, "State saved in %s", p)
	}
	return ok
}

// copyFile is the content of the file at path.
func copyFile(path string) content {
	return func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}
