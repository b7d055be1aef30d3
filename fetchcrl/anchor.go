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
func listAnchors(cfg Tiny, positional []string, log *Sink) []string {
	g := cfg["_"]
	infodir := g["infodir"]
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".info"), ".crl_url")
		key := filepath.Join(filepath.Dir(p), base)
		if seen[key] {
			return
		}
		if truthy(g["nosymlinks"]) {
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
func loadAnchor(path string, cfg Tiny, log *Sink) (*Anchor, bool) {
	name := filepath.Base(path)
	a := &Anchor{MetaFile: path}
	var raw []string // crl_url.N values, index = N
	if strings.HasSuffix(name, ".info") {
		a.Name = strings.TrimSuffix(name, ".info")
		info := Tiny{}
		if err := ReadTinyFile(path, info, nil); err != nil {
			log.Err("Cannot read %s: %v", path, err)
			return nil, false
		}
		m := info["_"]
		_, hasPlain := m["crl_url"]
		_, hasZero := m["crl_url.0"]
		if hasPlain && hasZero {
			log.Err("Invalid info for %s: crl_url and .0 duplicate", a.Name)
			return nil, false
		}
		if hasPlain {
			m["crl_url.0"] = m["crl_url"]
		}
		if _, ok := m["crl_url.0"]; !ok {
			log.Verbose(1, "Trust anchor %s does not have a CRL", a.Name)
			return nil, false
		}
		if m["alias"] == "" {
			log.Err("Invalid info for %s: no alias", a.Name)
			return nil, false
		}
		a.Alias = m["alias"]
		a.Status = m["status"]
		if a.Status == "" {
			a.Status = "local"
		}
		for i := 0; ; i++ {
			v, ok := m["crl_url."+strconv.Itoa(i)]
			if !ok {
				break
			}
			raw = append(raw, v)
		}
	} else {
		a.Name = strings.TrimSuffix(name, ".crl_url")
		a.Alias, a.Status = a.Name, "unknown"
		f, err := os.Open(path)
		if err != nil {
			log.Err("Cannot read %s: %v", path, err)
			return nil, false
		}
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
				f.Close()
				log.Err("File %s contains a non-URL entry %s", path, l)
				return nil, false
			}
			lines = append(lines, l)
		}
		f.Close()
		raw = []string{strings.Join(lines, ";")}
	}
	// crl_url.N overrides in [anchorname], then [alias] (alias wins).
	for i := range raw {
		for _, sect := range []string{a.Name, a.Alias} {
			if v, ok := cfg[sect]["crl_url."+strconv.Itoa(i)]; ok {
				raw[i] = v
			}
		}
	}
	usable := 0
	for _, v := range raw {
		v = strings.TrimSpace(v)
		if !urlRE.MatchString(v) {
			log.Err("File %s contains a non-URL entry %s", path, v)
			return nil, false
		}
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
					break
				}
				fallthrough
			default:
				log.Verbose(0, "URL %s in %s unsupported, ignored", u, filepath.Base(path))
			}
		}
		usable += len(urls)
		a.URLs = append(a.URLs, urls)
	}
	if usable == 0 {
		log.Err("No usable CRL URLs for %s", a.Name)
	}
	return a, true
}

// caFiles finds the CA certificates of an anchor: for index 0, 1, … the
// first catemplate name that exists in cadir; it stops when nothing is
// found or the same file repeats. hash expands @HASH@ (the CRL issuer's
// subject hash; fetch-crl 3 failed to parse it from OpenSSL 3).
func caFiles(a *Anchor, set map[string]string, hash string) []string {
	cadir := set["cadir"]
	templates := urlSplit.Split(strings.ReplaceAll(set["catemplate"], "\x01", ";"), -1)
	var out []string
	for idx := 0; ; idx++ {
		found := ""
		for _, t := range templates {
			if t == "" {
				continue
			}
			if strings.Contains(t, "@HASH@") && hash == "" {
				continue
			}
			n := expand(t, map[string]string{"@R@": strconv.Itoa(idx), "@ALIAS@": a.Alias, "@ANCHORNAME@": a.Name, "@HASH@": hash})
			p := filepath.Join(cadir, n)
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
