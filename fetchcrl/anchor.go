package fetchcrl

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Anchor is one trust anchor's metadata.
type Anchor struct {
	Name     string     // anchorname: metadata file basename without suffix
	Alias    string     // alias from .info, else Name
	Status   string     // .info status, "local" if none, "unknown" for .crl_url
	MetaFile string     // path of the .info or .crl_url file
	URLs     [][]string // per CRL index, the equivalent URLs
}

// listAnchors returns the metadata files to process: positional names or
// paths first, then infodir's *.info, then *.crl_url, without duplicates
// (an X.info hides X.crl_url).
func listAnchors(s *Settings, positional []string, log *Sink) []string {
	infodir := s.Infodir
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".info"), ".crl_url")
		key := filepath.Join(filepath.Dir(p), base)
		if seen[key] {
			return
		}
		if s.NoSymlinks {
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
				return
			}
		}
		seen[key] = true
		files = append(files, p)
	}
	for _, a := range positional {
		var found string
		for _, cand := range []string{a, a + ".info", a + ".crl_url", filepath.Join(infodir, a+".info"), filepath.Join(infodir, a+".crl_url")} {
			if strings.HasSuffix(cand, ".info") || strings.HasSuffix(cand, ".crl_url") {
				if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() {
					found = cand
					break
				}
			}
		}
		if found == "" {
			log.Err("No trust anchor metadata for %s in '%s/'", a, infodir)
			continue
		}
		add(found)
	}
	if infodir != "" {
		for _, suffix := range []string{"*.info", "*.crl_url"} {
			m, _ := filepath.Glob(filepath.Join(infodir, suffix))
			// Perl's glob sorts case-insensitively (GLOB_ALPHASORT).
			sort.Slice(m, func(i, j int) bool {
				a, b := strings.ToLower(m[i]), strings.ToLower(m[j])
				if a != b {
					return a < b
				}
				return m[i] < m[j]
			})
			for _, p := range m {
				add(p)
			}
		}
	}
	return files
}

var urlRE = regexp.MustCompile(`^\w+://`)
var urlSplit = regexp.MustCompile(`[;\s]+`)

// loadAnchor reads a .info or .crl_url file. ok=false means skip the anchor
// (after logging why).
func loadAnchor(path string, s *Settings, log *Sink) (*Anchor, bool) {
	var a *Anchor
	var raw []string // crl_url.N values, index = N
	if strings.HasSuffix(path, ".info") {
		a, raw = readInfo(path, log)
	} else {
		a, raw = readCRLURL(path, log)
	}
	if a == nil {
		return nil, false
	}
	// crl_url.N overrides in [anchorname], then [alias] (alias wins).
	for i := range raw {
		if v, ok := s.crlURL(a.Name, a.Alias, i); ok {
			raw[i] = v
		}
	}
	usable := 0
	for _, v := range raw {
		v = strings.TrimSpace(v)
		if !urlRE.MatchString(v) {
			log.Err("File %s contains a non-URL entry %s", path, v)
			return nil, false
		}
		urls := supportedURLs(v, filepath.Base(path), log)
		usable += len(urls)
		a.URLs = append(a.URLs, urls)
	}
	if usable == 0 {
		log.Err("No usable CRL URLs for %s", a.Name)
	}
	return a, true
}

// readInfo reads an IGTF .info file; nil when the anchor is skipped.
func readInfo(path string, log *Sink) (*Anchor, []string) {
	a := &Anchor{MetaFile: path, Name: strings.TrimSuffix(filepath.Base(path), ".info")}
	info := Tiny{}
	if err := ReadTinyFile(path, info, nil); err != nil {
		log.Err("Cannot read %s: %v", path, err)
		return nil, nil
	}
	m := info["_"]
	_, hasPlain := m["crl_url"]
	_, hasZero := m["crl_url.0"]
	if hasPlain && hasZero {
		log.Err("Invalid info for %s: crl_url and .0 duplicate", a.Name)
		return nil, nil
	}
	if hasPlain {
		m["crl_url.0"] = m["crl_url"]
	}
	if _, ok := m["crl_url.0"]; !ok {
		log.Verbose(1, "Trust anchor %s does not have a CRL", a.Name)
		return nil, nil
	}
	if m["alias"] == "" {
		log.Err("Invalid info for %s: no alias", a.Name)
		return nil, nil
	}
	a.Alias = m["alias"]
	a.Status = m["status"]
	if a.Status == "" {
		a.Status = "local"
	}
	var raw []string
	for i := 0; ; i++ {
		v, ok := m["crl_url."+strconv.Itoa(i)]
		if !ok {
			return a, raw
		}
		raw = append(raw, v)
	}
}

// readCRLURL reads an old-style .crl_url file: its lines are the URLs of
// index 0.
func readCRLURL(path string, log *Sink) (*Anchor, []string) {
	name := strings.TrimSuffix(filepath.Base(path), ".crl_url")
	a := &Anchor{MetaFile: path, Name: name, Alias: name, Status: "unknown"}
	f, err := os.Open(path)
	if err != nil {
		log.Err("Cannot read %s: %v", path, err)
		return nil, nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if !urlRE.MatchString(l) {
			log.Err("File %s contains a non-URL entry %s", path, l)
			return nil, nil
		}
		lines = append(lines, l)
	}
	return a, []string{strings.Join(lines, ";")}
}

// supportedURLs splits one index's URL list and keeps the schemes
// fetch-crl retrieves.
func supportedURLs(v, file string, log *Sink) []string {
	var urls []string
	for _, u := range urlSplit.Split(v, -1) {
		if u == "" {
			continue
		}
		scheme, _, _ := strings.Cut(u, "://")
		switch strings.ToLower(scheme) {
		case "http", "https", "ftp", "file":
			if urlRE.MatchString(u) {
				urls = append(urls, u)
				continue
			}
		}
		log.Verbose(0, "URL %s in %s unsupported, ignored", u, file)
	}
	return urls
}

// caFiles finds the CA certificates of an anchor: for index 0, 1, … the
// first catemplate name that exists in cadir; it stops when nothing is
// found or the same file repeats. hash expands @HASH@ (the CRL issuer's
// subject hash; fetch-crl 3 failed to parse it from OpenSSL 3).
func caFiles(a *Anchor, set *AnchorSettings, hash string) []string {
	var out []string
	for idx := 0; ; idx++ {
		found := ""
		for _, t := range set.CATemplates {
			if strings.Contains(t, "@HASH@") && hash == "" {
				continue
			}
			n := expand(t, map[string]string{"@R@": strconv.Itoa(idx), "@ALIAS@": a.Alias, "@ANCHORNAME@": a.Name, "@HASH@": hash})
			p := filepath.Join(set.Cadir, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				found = p
				break
			}
		}
		if found == "" || (len(out) > 0 && out[len(out)-1] == found) {
			return out
		}
		out = append(out, found)
	}
}

func (a *Anchor) String() string { return fmt.Sprintf("%s (%s)", a.Name, a.Alias) }
