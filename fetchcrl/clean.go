package fetchcrl

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
)

var crlFileRE = regexp.MustCompile(`^([0-9a-f]{8})\.r(\d+)$`)

// caHashes returns the subject hashes (new and old) of every certificate
// in dir.
func caHashes(dir string) map[string]bool {
	out := map[string]bool{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.IsDir() || crlFileRE.MatchString(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || len(b) > 1<<20 {
			continue
		}
		cert, err := certstore.ParseCert(b)
		if err != nil {
			continue
		}
		if h, err := certid.SubjectHash(cert.RawSubject); err == nil {
			out[h] = true
		}
		out[certid.SubjectHashOld(cert.RawSubject)] = true
	}
	return out
}

// Clean removes <hash>.rN files in the OpenSSL output directory whose hash
// belongs to no CA certificate in cadir (the job of fetch-crl's clean-crl,
// without its mistake of deleting the old-hash CRLs of dual mode). With
// dryRun nothing is removed. It returns the files (to be) removed.
func Clean(s *Settings, dryRun bool, log *Sink) []string {
	out := s.OutputDir("openssl")
	known := caHashes(s.Cadir)
	for k := range caHashes(out) {
		known[k] = true
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		log.Err("Cannot read output directory %s: %v", out, err)
		return nil
	}
	var removed []string
	for _, e := range ents {
		m := crlFileRE.FindStringSubmatch(e.Name())
		if m == nil || known[m[1]] {
			continue
		}
		p := filepath.Join(out, e.Name())
		removed = append(removed, p)
		if dryRun {
			log.Verbose(0, "Would remove orphaned CRL file %s", p)
			continue
		}
		if err := os.Remove(p); err != nil {
			log.Err("Cannot remove %s: %v", p, err)
			continue
		}
		log.Verbose(1, "Removed orphaned CRL file %s", p)
	}
	return removed
}

// removeStale deletes the files and state of CRL indices an anchor no
// longer has (its CRL count dropped), known from their state files.
func (t *taRun) removeStale() {
	sd := t.set.Statedir
	if sd == "" || len(t.cas) == 0 {
		return
	}
	dir := t.s.OutputDir("openssl")
	for k := len(t.a.URLs); ; k++ {
		st := filepath.Join(sd, fmt.Sprintf("%s.%d.state", t.a.Alias, k))
		if _, err := os.Stat(st); err != nil {
			return
		}
		for _, h := range t.dualNames() {
			p := filepath.Join(dir, h+".r"+strconv.Itoa(k))
			if err := os.Remove(p); err == nil {
				t.log.Verbose(1, "Removed stale CRL file %s (%s has %d CRLs now)", p, t.a.Alias, len(t.a.URLs))
			}
		}
		os.Remove(st)
	}
}
