package fetchcrl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dirmngr/dirmngr/certid"
)

// writeResult counts one index's writes over all formats.
type writeResult struct {
	total, good int
	changed     bool
	installed   string // one installed file holding the CRL (PEM or DER), for the dirmngr feed
}

func (w *writeResult) add(ok, changed bool, path string) {
	w.total++
	if ok {
		w.good++
		if w.installed == "" && path != "" {
			w.installed = path
		}
	}
	w.changed = w.changed || changed
}

// write installs every verified index in every format; it returns whether
// all writes succeeded.
func (t *taRun) write() bool {
	t.log.Verbose(2, "Writing CRLs for %s", t.a.Alias)
	allOK := true
	for i, v := range t.crls {
		if v == nil {
			continue
		}
		res := t.writeIndex(i, v)
		if res.good == res.total {
			t.log.Verbose(4, "LastWrite time (mtime) set to current time")
			t.states[i].setInt("mtime", t.r.Now().Unix())
			if res.changed {
				t.r.count(1, 0, 0)
				t.feedDirmngr(v, res.installed)
			} else {
				t.r.count(0, 1, 0)
			}
		} else {
			t.log.Warn("Partial updating (%d of %d) for %s CRL %d: mtime not updated", res.good, res.total, t.a.Alias, i)
			allOK = false
		}
		t.record(i, v)
	}
	return allOK
}

// writeIndex writes index i in the configured formats, in fetch-crl's
// order: pem, der, openssl, nss.
func (t *taRun) writeIndex(i int, v *verified) writeResult {
	var res writeResult
	s := t.s
	tokens := t.tokens(i)
	if s.Formats.PEM {
		if v.src.pem != nil {
			t.log.Verbose(5, "Appending newline to short PEM file")
		}
		p := filepath.Join(s.OutputDir("pem"), expand(t.set.NameTemplatePEM, tokens))
		t.log.Verbose(3, "Writing PEM file %s", p)
		ok, ch := t.updateFile(p, v.writePEMFile)
		res.add(ok, ch, p)
	}
	if s.Formats.DER {
		p := filepath.Join(s.OutputDir("der"), expand(t.set.NameTemplateDER, tokens))
		t.log.Verbose(3, "Writing DER file %s", p)
		ok, ch := t.updateFile(p, v.writeDER)
		res.add(ok, ch, p)
	}
	if s.Formats.OpenSSL {
		t.writeOpenSSL(i, v, &res)
	}
	if s.Formats.NSS {
		res.add(t.writeNSS(s.OutputDir("nss"), i, v.writeDER), true, "")
	}
	return res
}

// writeOpenSSL writes <hash>.r<i>: both subject hashes of the first CA
// file in dual mode, the CRL issuer's hash otherwise.
func (t *taRun) writeOpenSSL(i int, v *verified, res *writeResult) {
	d := t.s.OutputDir("openssl")
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.log.Err("OpenSSL target directory %s invalid", d)
		res.add(false, false, "")
		return
	}
	var names []string
	if t.s.OpenSSLDual {
		names = t.dualNames()
	} else if h, err := certid.SubjectHash(v.info.RawIssuer); err == nil {
		names = []string{h}
	}
	for _, h := range names {
		p := filepath.Join(d, fmt.Sprintf("%s.r%d", h, i))
		t.log.Verbose(3, "Writing OpenSSL file %s", p)
		ok, ch := t.updateFile(p, v.writeOpenSSL)
		res.add(ok, ch, p)
	}
}

// dualNames are the subject_hash and subject_hash_old of the first CA
// file, fetch-crl's dual-mode file names.
func (t *taRun) dualNames() []string {
	if len(t.cas) == 0 || t.cas[0].cert == nil {
		return nil
	}
	subj := t.cas[0].cert.RawSubject
	h, err := certid.SubjectHash(subj)
	if err != nil {
		return nil
	}
	return []string{h, certid.SubjectHashOld(subj)}
}

// content writes a file's bytes to w (from the spool files: never held
// in memory).
type content func(w io.Writer) error

// updateFile writes content to path atomically (temp file + rename in the
// same directory, mode of the old file or 0644), or only refreshes the
// mtime when the content is unchanged. It returns (ok, changed).
func (t *taRun) updateFile(path string, content content) (bool, bool) {
	fi, err := os.Stat(path)
	exists := err == nil
	if t.s.Backups && exists {
		t.backup(path, fi)
	}
	now := t.r.Now()
	if exists && sameContent(path, content) {
		t.log.Verbose(4, "%s unchanged - touch only", path)
		if err := os.Chtimes(path, now, now); err != nil {
			t.log.Err("Cannot touch %s: %v", path, err)
			return false, false
		}
		return true, false
	}
	mode := os.FileMode(0o644)
	if exists {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "XXXXXXXXXX*.tmp")
	if err != nil {
		// Directory not writable: rewrite in place, as fetch-crl does.
		if err := writeFile(path, mode, content); err != nil {
			t.log.Err("Cannot write %s: %v", path, err)
			return false, false
		}
		return true, true
	}
	t.log.Verbose(5, "TMP file for %s mode %d", path, mode)
	bw := bufio.NewWriterSize(tmp, 64<<10)
	werr := content(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		t.log.Err("Cannot write %s: %v", path, errors.Join(werr, cerr))
		return false, false
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		t.log.Verbose(2, "Cannot set mode of %s: %v", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		t.log.Err("Cannot install %s: %v", path, err)
		return false, false
	}
	return true, true
}

// writeFile writes content to path in place (os.WriteFile's semantics).
func writeFile(path string, mode os.FileMode, content content) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	werr := content(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	return errors.Join(werr, f.Close())
}

// sameContent reports whether the file at path holds exactly content.
func sameContent(path string, content content) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	cw := &compareWriter{r: bufio.NewReaderSize(f, 64<<10), buf: make([]byte, 32<<10), same: true}
	if err := content(cw); err != nil || !cw.same {
		return false
	}
	_, err = cw.r.ReadByte()
	return err == io.EOF // and nothing more in the file
}

// compareWriter compares what is written with what r holds.
type compareWriter struct {
	r    *bufio.Reader
	buf  []byte
	same bool
}

var errDiffers = errors.New("content differs")

func (c *compareWriter) Write(p []byte) (int, error) {
	for n := 0; n < len(p); {
		k := min(len(p)-n, len(c.buf))
		if _, err := io.ReadFull(c.r, c.buf[:k]); err != nil || !bytes.Equal(c.buf[:k], p[n:n+k]) {
			c.same = false
			return n, errDiffers
		}
		n += k
	}
	return len(p), nil
}

// backup copies the old content to path~ with the old mtime (fetch-crl's
// backups, done on every write).
func (t *taRun) backup(path string, fi os.FileInfo) {
	if err := writeFile(path+"~", fi.Mode().Perm(), copyFile(path)); err != nil {
		t.log.Verbose(2, "Cannot write backup %s~: %v", path, err)
		return
	}
	if err := os.Chtimes(path+"~", fi.ModTime(), fi.ModTime()); err != nil {
		t.log.Verbose(2, "Cannot date backup %s~: %v", path, err)
	}
}

// writeNSS imports the CRL into the NSS database with crlutil, as
// fetch-crl does.
func (t *taRun) writeNSS(dir string, i int, der content) bool {
	tmp, err := os.CreateTemp(os.TempDir(), "fetchcrl3der.")
	if err != nil {
		t.log.Err("Cannot update NSSDB filename: %s", dir)
		return true
	}
	defer os.Remove(tmp.Name())
	tmp.Close()
	if err := writeFile(tmp.Name(), 0o600, der); err != nil {
		t.log.Err("Cannot update NSSDB filename: %s (%v)", dir, err)
		return true
	}
	args := []string{"-I", "-d", dir, "-P", t.s.NSSDBPrefix}
	if t.s.NoNSSVerify {
		args = append(args, "-B")
	}
	args = append(args, "-n", fmt.Sprintf("%s.%d", t.a.Alias, i), "-i", tmp.Name())
	if out, err := exec.Command("crlutil", args...).CombinedOutput(); err != nil {
		t.log.Err("Cannot update NSSDB filename: %s (%s)", dir, strings.TrimSpace(string(out)))
	}
	// fetch-crl counts an NSS failure as a successful write.
	return true
}
