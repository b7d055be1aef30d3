package fetchcrl

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// Runner executes one fetch-crl run.
type Runner struct {
	Cfg Tiny
	Log *Log
	Out io.Writer // progress display (a terminal), nil for none
	Now func() time.Time

	mu      sync.Mutex
	summary struct{ fetched, unchanged, failed int }
}

// Run processes every trust anchor and returns the exit status.
func (r *Runner) Run(ctx context.Context, positional []string) int {
	if r.Now == nil {
		r.Now = time.Now
	}
	g := r.Cfg["_"]
	glog := r.Log.Global()
	if n, _ := strconv.Atoi(g["randomwait"]); n > 0 {
		d := rand.IntN(n)
		glog.Verbose(2, "Sleeping %d seconds before continuing", d)
		time.Sleep(time.Duration(d) * time.Second)
	}
	files := listAnchors(r.Cfg, positional, glog)
	if len(files) == 0 {
		glog.Warn("No trust anchors to process")
	}
	par, _ := strconv.Atoi(g["parallelism"])
	if par <= 0 {
		for i, f := range files {
			r.anchor(ctx, f, false).Flush()
			r.progress(i+1, len(files))
		}
	} else {
		sinks := make([]*Sink, len(files))
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		done := 0
		for i, f := range files {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				sinks[i] = r.anchor(ctx, f, true)
				r.mu.Lock()
				done++
				r.progress(done, len(files))
				r.mu.Unlock()
			}()
		}
		wg.Wait()
		// Output in metadata order, as fetch-crl prints its workers'.
		for _, s := range sinks {
			s.Flush()
		}
	}
	if pe := g["postexec"]; pe != "" {
		glog.Verbose(2, "Executing global postexec %s", pe)
		if err := runPostexec(pe, "v1", "global", g["infodir"], g["cadir"], g["output"]); err != nil {
			glog.Err("%v", err)
		}
	}
	if r.Out != nil && len(files) > 0 {
		fmt.Fprintf(r.Out, "\rfetch-crl: %d anchors: %d CRLs installed or updated, %d unchanged, %d failed\033[K\n",
			len(files), r.summary.fetched, r.summary.unchanged, r.summary.failed)
	}
	return r.Log.ExitStatus(g["rcmode"])
}

func (r *Runner) progress(done, total int) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, "\rfetch-crl: %d/%d trust anchors", done, total)
	}
}

func runPostexec(prog string, args ...string) error {
	cmd := exec.Command(prog, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("postexec program for %s returned error code %d", args[1], ee.ExitCode())
	}
	if err != nil {
		if args[1] == "global" {
			return fmt.Errorf("Cannot execute global postexec program: %v", unwrapExec(err))
		}
		return fmt.Errorf("Cannot execute postexec program for %s: %v", args[2], unwrapExec(err))
	}
	return nil
}

func unwrapExec(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// state is one <statedir>/<alias>.<i>.state file.
type state map[string]string

func (s state) int64(k string) int64 {
	n, _ := strconv.ParseInt(s[k], 10, 64)
	return n
}

// taRun is the work on one trust anchor.
type taRun struct {
	r      *Runner
	a      *Anchor
	set    map[string]string
	log    *Sink
	cas    []string
	states []state
	crls   []*verified // per index; nil = nothing new
}

type verified struct {
	pem                 []byte // content of the OpenSSL-format file
	der                 []byte
	info                *crl.Info
	raw                 []byte // downloaded bytes (state b64data)
	source              string
	lastMod, freshUntil int64
	etag                string
}

func (r *Runner) anchor(ctx context.Context, metafile string, buffered bool) *Sink {
	pre := r.Log.Global()
	if buffered {
		pre = r.Log.Anchor(false, false, true)
	}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(metafile), ".info"), ".crl_url")
	pre.Verbose(1, "Initializing trust anchor %s", name)
	a, ok := loadAnchor(metafile, r.Cfg, pre)
	if !ok || len(a.URLs) == 0 {
		return pre
	}
	set := anchorSettings(r.Cfg, a.Alias, a.Name, a.Status)
	log := r.Log.Anchor(truthy(set["nowarnings"]), truthy(set["noerrors"]), buffered)
	log.buf = append(pre.buf, log.buf...)
	log.errs, log.retrErrs = pre.errs, pre.retrErrs
	t := &taRun{r: r, a: a, set: set, log: log}
	t.loadState()
	// With @HASH@ in catemplate the CA is found from the CRL's issuer,
	// so it is looked up after the download (in retrieve).
	if !strings.Contains(set["catemplate"], "@HASH@") && !t.findCAs("") {
		r.count(0, 0, 1)
		return log
	}
	if !t.retrieve(ctx) {
		r.count(0, 0, 1)
		return log
	}
	written := t.write()
	t.removeStale()
	if !t.saveState() {
		return log
	}
	if written && set["postexec"] != "" {
		g := r.Cfg["_"]
		log.Verbose(2, "Executing postexec %s for %s", set["postexec"], a.Alias)
		if err := runPostexec(set["postexec"], "v1", "ta", a.Alias, a.MetaFile, g["cadir"], g["output"]); err != nil {
			log.Err("%v", err)
		}
	}
	return log
}

func (r *Runner) count(fetched, unchanged, failed int) {
	r.mu.Lock()
	r.summary.fetched += fetched
	r.summary.unchanged += unchanged
	r.summary.failed += failed
	r.mu.Unlock()
}

func (t *taRun) statePath(i int) string {
	sd := t.set["statedir"]
	if sd == "" {
		return ""
	}
	return filepath.Join(sd, fmt.Sprintf("%s.%d.state", t.a.Alias, i))
}

// loadState reads the state of every index; without state (or without an
// mtime) the mtime is inferred from existing output files, else now.
func (t *taRun) loadState() {
	t.states = make([]state, len(t.a.URLs))
	t.crls = make([]*verified, len(t.a.URLs))
	g := t.r.Cfg["_"]
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
			tokens := map[string]string{"@R@": strconv.Itoa(i), "@ALIAS@": t.a.Alias, "@ANCHORNAME@": t.a.Name}
			names := []string{expand(t.set["nametemplate_der"], tokens), expand(t.set["nametemplate_pem"], tokens),
				fmt.Sprintf("%s.r%d", t.a.Alias, i), fmt.Sprintf("%s.r%d", t.a.Name, i)}
			var mt int64
		search:
			for _, dir := range []string{g["output"], g["output_der"], g["output_pem"], g["output_nss"], g["output_openssl"]} {
				if dir == "" {
					continue
				}
				for _, n := range names {
					if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
						mt = fi.ModTime().Unix()
						t.log.Verbose(3, "Inferred mtime for %s is %d", t.a.Alias, mt)
						break search
					}
				}
			}
			if mt == 0 {
				mt = t.r.Now().Unix()
			}
			st["mtime"] = strconv.FormatInt(mt, 10)
		}
		t.states[i] = st
	}
}

// retrieve downloads (or takes from the state cache) and verifies every
// index. false aborts the anchor (verification failure).
func (t *taRun) retrieve(ctx context.Context) bool {
	t.log.Verbose(2, "Retrieving CRLs for %s", t.a.Alias)
	now := t.r.Now()
	for i, urls := range t.a.URLs {
		st := t.states[i]
		t.log.Verbose(3, "Retrieving CRL for %s index %d", t.a.Alias, i)
		var data []byte
		var v verified
		fresh := st.int64("freshuntil")
		next := st.int64("nextupdate")
		if !truthy(t.set["nocache"]) && fresh > now.Unix() && (next == 0 || next >= now.Unix()) && next >= fresh && st["b64data"] != "" {
			if b, err := base64.StdEncoding.DecodeString(st["b64data"]); err == nil {
				t.log.Verbose(3, "Using cached content for %s index %d", t.a.Alias, i)
				data = b
				v.source, v.lastMod, v.freshUntil, v.etag = st["sourceurl"], st.int64("lastmod"), fresh, st["etag"]
			}
		}
		if data == nil {
			data, v = t.download(ctx, i, urls, st)
		}
		if data == nil {
			t.downloadFailed(i)
			continue
		}
		t.log.Verbose(4, "Got %d bytes of data (sum=%d)", len(data), perlSum(data))
		if t.cas == nil {
			h := crlIssuerHash(data)
			if h == "" {
				t.log.Verbose(3, "Inferred CA template HASH failed for %s", t.a.Alias)
			}
			if !t.findCAs(h) {
				return false
			}
		}
		ver, problems := t.verify(i, data)
		if ver == nil {
			if len(problems) > 0 {
				t.log.RetrErr("CRL verification failed for %s/%d (%s)", t.a.Name, i, t.a.Alias)
				for _, p := range problems {
					t.log.Verbose(0, "%s/%d: %s", t.a.Name, i, p)
				}
			}
			return false
		}
		ver.raw, ver.source, ver.lastMod, ver.freshUntil, ver.etag = data, v.source, v.lastMod, v.freshUntil, v.etag
		t.clampFreshness(ver)
		t.crls[i] = ver
	}
	return true
}

// findCAs looks the CA files up (hash: the CRL issuer's subject hash for
// @HASH@ templates).
func (t *taRun) findCAs(hash string) bool {
	t.cas = caFiles(t.a, t.set, hash)
	if len(t.cas) == 0 {
		t.log.Err("Cannot find any CA for %s in %s", t.a.Alias, t.set["cadir"])
		return false
	}
	for i, c := range t.cas {
		t.log.Verbose(3, "Added CA file %d: %s", i, c)
	}
	return true
}

// crlIssuerHash returns the subject hash of a downloaded CRL's issuer.
func crlIssuerHash(data []byte) string {
	info, err := crl.Parse(bytes.NewReader(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))), crl.Limits{}, nil)
	if err != nil {
		return ""
	}
	h, err := certid.SubjectHash(info.RawIssuer)
	if err != nil {
		return ""
	}
	return h
}

// perlSum is unpack("%32C*", data) % 65535, fetch-crl's state checksum.
func perlSum(b []byte) uint32 {
	var s uint32
	for _, c := range b {
		s += uint32(c)
	}
	return s % 65535
}

func (t *taRun) downloadFailed(i int) {
	idx := ""
	if i > 0 {
		idx = fmt.Sprintf(" [%d]", i)
	}
	t.log.Verbose(1, "CRL retrieval for %s%s failed from all URLs", t.a.Alias, idx)
	tol, _ := strconv.Atoi(t.set["agingtolerance"])
	mtime := t.states[i].int64("mtime")
	now := t.r.Now().Unix()
	switch {
	case tol > 0 && now-mtime < int64(3600*tol):
		left := (int64(3600*tol) + mtime - now) / 3600
		t.log.Warn("CRL retrieval for %s%s failed, %d left of %dh, retry later.", t.a.Alias, idx, left, tol)
	case tol > 0:
		t.log.RetrErr("CRL retrieval for %s%s failed. %dh grace expired. CRL not updated", t.a.Alias, idx, tol)
	default:
		t.log.RetrErr("CRL retrieval for %s%s failed, CRL not updated", t.a.Alias, idx)
	}
	t.r.count(0, 0, 1)
}

// download tries prepend_url, the anchor's URLs and postpend_url in order;
// the first that yields data wins. A conditional GET replaces fetch-crl's
// HEAD + GET when the state has validators.
func (t *taRun) download(ctx context.Context, i int, urls []string, st state) ([]byte, verified) {
	tokens := map[string]string{"@R@": strconv.Itoa(i), "@ALIAS@": t.a.Alias, "@ANCHORNAME@": t.a.Name, "@STATUS@": t.a.Status}
	var all []string
	if p := t.set["prepend_url"]; p != "" {
		all = append(all, expand(p, tokens))
	}
	for _, u := range urls {
		all = append(all, expand(u, tokens))
	}
	if p := t.set["postpend_url"]; p != "" {
		all = append(all, expand(p, tokens))
	}
	timeout, _ := strconv.Atoi(t.set["httptimeout"])
	for _, u := range all {
		t.log.Verbose(3, "Downloading data from %s", u)
		if strings.HasPrefix(strings.ToLower(u), "file://") {
			p := strings.TrimPrefix(u[len("file://"):], "localhost")
			b, err := os.ReadFile(p)
			if err != nil {
				t.log.Verbose(2, "Cannot read %s: %v", p, err)
				continue
			}
			if len(b) == 0 {
				continue
			}
			fi, _ := os.Stat(p)
			now := t.r.Now().Unix()
			return b, verified{source: u, lastMod: fi.ModTime().Unix(), freshUntil: now}
		}
		data, v, err := t.httpGet(ctx, u, timeout, st)
		if err != nil {
			t.log.Verbose(0, "Download error %s: %s", u, err)
			continue
		}
		if len(data) > 0 {
			return data, v
		}
	}
	return nil, verified{}
}

type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

func (t *taRun) httpGet(ctx context.Context, u string, timeout int, st state) ([]byte, verified, error) {
	g := t.r.Cfg["_"]
	proxy := t.set["http_proxy"]
	if strings.HasPrefix(strings.ToLower(u), "https:") && t.set["https_proxy"] != "" && !strings.EqualFold(proxy, "ENV") {
		proxy = t.set["https_proxy"]
	}
	cfg := fetch.Config{Timeout: time.Duration(timeout) * time.Second, ConnectTimeout: time.Duration(timeout) * time.Second,
		MaxBody: 512 << 20, UserAgent: t.set["user_agent"]}
	if cfg.UserAgent == "" {
		cfg.UserAgent = fmt.Sprintf("fetch-crl/%s (Go fetch-crl; %s)", g["version"], g["packager"])
	}
	if strings.EqualFold(proxy, "ENV") {
		cfg.HonorEnvProxy = true
	} else {
		cfg.Proxy = proxy
	}
	f := fetch.New(cfg)
	if strings.HasPrefix(strings.ToLower(u), "ftp:") {
		b, err := f.GetFTP(ctx, u)
		if err != nil {
			var se *fetch.StatusError
			if errors.As(err, &se) {
				return nil, verified{}, &statusError{se.Status}
			}
			return nil, verified{}, errors.New(shortNetError(err))
		}
		now := t.r.Now().Unix()
		return b, verified{source: u, lastMod: now, freshUntil: now}, nil
	}
	var prev *fetch.Validators
	if st["b64data"] != "" && (st["lastmod"] != "" || st["etag"] != "") {
		prev = &fetch.Validators{ETag: st["etag"]}
		if lm := st.int64("lastmod"); lm > 0 {
			prev.LastModified = time.Unix(lm, 0).UTC().Format(http.TimeFormat)
		}
	}
	hdr := http.Header{}
	if cc := g["cache_control_request"]; cc != "" {
		hdr.Set("Cache-Control", "max-age="+cc)
	}
	resp, err := f.GetWithHeaders(ctx, u, prev, hdr)
	if err != nil {
		var se *fetch.StatusError
		if errors.As(err, &se) {
			return nil, verified{}, &statusError{se.Status}
		}
		return nil, verified{}, errors.New(shortNetError(err))
	}
	defer resp.Body.Close()
	now := t.r.Now()
	v := verified{source: u, etag: resp.Validators.ETag, freshUntil: freshUntil(resp.Header, now)}
	if lm, err := http.ParseTime(resp.Validators.LastModified); err == nil {
		v.lastMod = lm.Unix()
	} else {
		v.lastMod = now.Unix()
	}
	if resp.NotModified {
		t.log.Verbose(4, "Not modified since the last retrieval, using cache")
		b, err := base64.StdEncoding.DecodeString(st["b64data"])
		if err != nil {
			return nil, verified{}, fmt.Errorf("cached data unreadable: %v", err)
		}
		if st["etag"] != "" && v.etag == "" {
			v.etag = st["etag"]
		}
		return b, v, nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, verified{}, errors.New(shortNetError(err))
	}
	return b, v, nil
}

func shortNetError(err error) string {
	switch gpgerr.CodeOf(err) {
	case gpgerr.ErrTimeout:
		return "timed out"
	case gpgerr.ErrTooLarge:
		return "response too large"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial") {
		return "Can't connect (" + msg[i+2:] + ")"
	}
	return msg
}

// freshUntil follows LWP's fresh_until(heuristic_expiry => 0): max-age or
// Expires, else now.
func freshUntil(h http.Header, now time.Time) int64 {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(d)
		if v, ok := strings.CutPrefix(strings.ToLower(d), "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				age, _ := strconv.ParseInt(h.Get("Age"), 10, 64)
				return now.Unix() + n - age
			}
		}
	}
	if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			return now.Unix() + int64(exp.Sub(date).Seconds())
		}
		return exp.Unix()
	}
	return now.Unix()
}

var pemRE = regexp.MustCompile(`(?sm)(^-----BEGIN X509 CRL-----\n[^-]+\n-----END X509 CRL-----$)`)

// verify recognises PEM or DER, checks the signature against the CA files
// and the time rules. It returns the verified CRL, or the list of
// problems (fetch-crl reports them all after the ERROR line). The PEM
// content follows fetch-crl's bytes: a PEM download is the first block
// without its final newline, a DER download becomes 64-column PEM ending
// in a newline.
func (t *taRun) verify(i int, data []byte) (*verified, []string) {
	var pemData, der []byte
	norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")) // fetch-crl 3 rejected CRLF PEM
	if m := pemRE.FindSubmatch(norm); m != nil {
		pemData = m[1]
		blk, _ := pem.Decode(append(append([]byte(nil), pemData...), '\n'))
		if blk == nil {
			return nil, []string{"PEM data cannot be decoded"}
		}
		der = blk.Bytes
	} else if len(data) > 0 && data[0] == 0x30 {
		der = data
		pemData = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	} else {
		t.log.Warn("CRL data for %s/%d not recognised", t.a.Name, i)
		t.log.Err("verify called on empty data blob")
		return nil, nil
	}
	t.log.Verbose(4, "Verifying CRL %d for %s", i, t.a.Alias)
	info, err := crl.Parse(bytes.NewReader(der), crl.Limits{}, nil)
	if err != nil {
		return nil, []string{fmt.Sprintf("CRL cannot be parsed: %v", err), "downloaded CRL lastUpdate could not be derived"}
	}
	var problems []string
	ok := false
	for _, cafile := range t.cas {
		b, err := os.ReadFile(cafile)
		if err != nil {
			continue
		}
		cert, err := certstore.ParseCert(b)
		if err != nil {
			continue
		}
		if info.Verify(cert.PublicKey) == nil && bytes.Equal(cert.RawSubject, info.RawIssuer) {
			t.log.Verbose(4, "Verified CRL %s/%d against %s", t.a.Alias, i, cafile)
			ok = true
			break
		}
	}
	if !ok {
		problems = append(problems, "CRL signature failed")
	}
	now := t.r.Now()
	switch {
	case info.NextUpdate.IsZero():
		problems = append(problems, "CRL nextUpdate determination failed")
	case info.NextUpdate.Before(now):
		problems = append(problems, "CRL has nextUpdate time in the past")
	}
	if info.ThisUpdate.After(now) {
		problems = append(problems, "CRL has lastUpdate time in the future")
	}
	st := t.states[i]
	if old := st.int64("lastupdate"); old > 0 && info.ThisUpdate.Unix() < old {
		if old > now.Unix() {
			t.log.Warn("%s/%d: replaced with downloaded CRL since current one has lastUpdate in the future", t.a.Name, i)
		} else if st.int64("mtime") <= now.Unix() {
			problems = append(problems, "downloaded CRL lastUpdate predates installed CRL,", "and current version has sane timestamp")
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &verified{pem: pemData, der: der, info: info}, nil
}

func (t *taRun) clampFreshness(v *verified) {
	g := t.r.Cfg["_"]
	expTol, _ := strconv.ParseInt(g["expirestolerance"], 10, 64)
	maxCache, _ := strconv.ParseInt(g["maxcachetime"], 10, 64)
	next := v.info.NextUpdate.Unix()
	now := t.r.Now().Unix()
	if v.freshUntil > next+expTol {
		t.log.Verbose(1, "Cache control headers for CA %s at URL %s have apparent freshness %.1fhrs beyond CRL expiration nextUpdate. Reset freshness from %s to %d second before nextUpdate at %s.",
			t.a.Alias, v.source, float64(v.freshUntil-next)/3600, perlTime(v.freshUntil), expTol, perlTime(next-expTol))
		v.freshUntil = next - expTol
	}
	if v.freshUntil > now+maxCache {
		t.log.Verbose(1, "Cache state freshness expiry for CA %s reset to at most %.1fhrs beyond current time (%s)", t.a.Alias, float64(maxCache)/3600, perlTime(now+maxCache))
		v.freshUntil = now + maxCache
	}
}

func perlTime(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("Mon Jan _2 15:04:05 2006") + " UTC"
}

// write installs every verified index in every format; it returns whether
// all writes succeeded.
func (t *taRun) write() bool {
	g := t.r.Cfg["_"]
	t.log.Verbose(2, "Writing CRLs for %s", t.a.Alias)
	formats := strings.FieldsFunc(g["formats"], func(r rune) bool { return r == '\x01' || r == ';' || r == ',' || r == ' ' || r == '\t' })
	want := map[string]bool{}
	for _, f := range formats {
		want[f] = true
	}
	allOK := true
	for i, v := range t.crls {
		if v == nil {
			continue
		}
		tokens := map[string]string{"@R@": strconv.Itoa(i), "@ALIAS@": t.a.Alias, "@ANCHORNAME@": t.a.Name, "@STATUS@": t.a.Status}
		total, good, changed := 0, 0, false
		dir := func(f string) string {
			if d := g["output_"+f]; d != "" {
				return d
			}
			return g["output"]
		}
		try := func(ok, ch bool) {
			total++
			if ok {
				good++
			}
			changed = changed || ch
		}
		if want["pem"] {
			content := v.pem
			if !bytes.HasSuffix(content, []byte("\n")) {
				t.log.Verbose(5, "Appending newline to short PEM file")
				content = append(append([]byte(nil), content...), '\n')
			}
			p := filepath.Join(dir("pem"), expand(t.set["nametemplate_pem"], tokens))
			t.log.Verbose(3, "Writing PEM file %s", p)
			try(t.updateFile(p, content))
		}
		if want["der"] {
			p := filepath.Join(dir("der"), expand(t.set["nametemplate_der"], tokens))
			t.log.Verbose(3, "Writing DER file %s", p)
			try(t.updateFile(p, v.der))
		}
		if want["openssl"] {
			d := dir("openssl")
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
				t.log.Err("OpenSSL target directory %s invalid", d)
				try(false, false)
			} else {
				var names []string
				if g["opensslmode"] == "dual" {
					names = t.dualNames()
				} else {
					h, err := certid.SubjectHash(v.info.RawIssuer)
					if err == nil {
						names = []string{h}
					}
				}
				for _, h := range names {
					p := filepath.Join(d, fmt.Sprintf("%s.r%d", h, i))
					t.log.Verbose(3, "Writing OpenSSL file %s", p)
					try(t.updateFile(p, v.pem))
				}
			}
		}
		if want["nss"] {
			try(t.writeNSS(dir("nss"), i, v.der), true)
		}
		st := t.states[i]
		if good == total {
			t.log.Verbose(4, "LastWrite time (mtime) set to current time")
			st["mtime"] = strconv.FormatInt(t.r.Now().Unix(), 10)
			if changed {
				t.r.count(1, 0, 0)
				t.feedDirmngr(v)
			} else {
				t.r.count(0, 1, 0)
			}
		} else {
			t.log.Warn("Partial updating (%d of %d) for %s CRL %d: mtime not updated", good, total, t.a.Alias, i)
			allOK = false
		}
		st["alias"] = t.a.Alias
		st["index"] = strconv.Itoa(i)
		st["b64data"] = base64.StdEncoding.EncodeToString(v.raw)
		st["freshuntil"] = strconv.FormatInt(v.freshUntil, 10)
		st["issuer"] = opensslOneline(v.info.RawIssuer)
		st["lastmod"] = strconv.FormatInt(v.lastMod, 10)
		st["lastupdate"] = strconv.FormatInt(v.info.ThisUpdate.Unix(), 10)
		st["nextupdate"] = strconv.FormatInt(v.info.NextUpdate.Unix(), 10)
		st["retrievaltime"] = strconv.FormatInt(t.r.Now().Unix(), 10)
		sum := sha1.Sum(v.der)
		st["sha1fp"] = colonHex(sum[:])
		st["sourceurl"] = v.source
		st["sum"] = strconv.FormatUint(uint64(perlSum(v.raw)), 10)
		if v.etag != "" {
			st["etag"] = v.etag
		} else {
			delete(st, "etag")
		}
	}
	return allOK
}

// dualNames are the subject_hash and subject_hash_old of the first CA
// file, fetch-crl's dual-mode file names.
func (t *taRun) dualNames() []string {
	b, err := os.ReadFile(t.cas[0])
	if err != nil {
		return nil
	}
	cert, err := certstore.ParseCert(b)
	if err != nil {
		return nil
	}
	h, err := certid.SubjectHash(cert.RawSubject)
	if err != nil {
		return nil
	}
	return []string{h, certid.SubjectHashOld(cert.RawSubject)}
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, ":")
}

// updateFile writes content to path atomically (temp file + rename in the
// same directory, mode of the old file or 0644), or only refreshes the
// mtime when the content is unchanged. It returns (ok, changed).
func (t *taRun) updateFile(path string, content []byte) (bool, bool) {
	g := t.r.Cfg["_"]
	old, err := os.ReadFile(path)
	exists := err == nil
	if truthy(g["backups"]) && exists {
		fi, _ := os.Stat(path)
		if err := os.WriteFile(path+"~", old, fi.Mode().Perm()); err == nil {
			os.Chtimes(path+"~", fi.ModTime(), fi.ModTime())
		}
	}
	now := t.r.Now()
	if exists && bytes.Equal(old, content) {
		t.log.Verbose(4, "%s unchanged - touch only", path)
		if err := os.Chtimes(path, now, now); err != nil {
			t.log.Err("Cannot touch %s: %v", path, err)
			return false, false
		}
		return true, false
	}
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "XXXXXXXXXX*.tmp")
	if err != nil {
		// Directory not writable: rewrite in place, as fetch-crl does.
		if err := os.WriteFile(path, content, mode); err != nil {
			t.log.Err("Cannot write %s: %v", path, err)
			return false, false
		}
		return true, true
	}
	t.log.Verbose(5, "TMP file for %s mode %d", path, mode)
	_, werr := tmp.Write(content)
	cerr := tmp.Close()
	if werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		t.log.Err("Cannot write %s: %v", path, errors.Join(werr, cerr))
		return false, false
	}
	os.Chmod(tmp.Name(), mode)
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		t.log.Err("Cannot install %s: %v", path, err)
		return false, false
	}
	return true, true
}

// writeNSS imports the CRL into the NSS database with crlutil, as
// fetch-crl does.
func (t *taRun) writeNSS(dir string, i int, der []byte) bool {
	g := t.r.Cfg["_"]
	tmp, err := os.CreateTemp(os.TempDir(), "fetchcrl3der.")
	if err != nil {
		t.log.Err("Cannot update NSSDB filename: %s", dir)
		return true
	}
	defer os.Remove(tmp.Name())
	tmp.Write(der)
	tmp.Close()
	args := []string{"-I", "-d", dir, "-P", g["nssdbprefix"]}
	if truthy(g["nonssverify"]) {
		args = append(args, "-B")
	}
	args = append(args, "-n", fmt.Sprintf("%s.%d", t.a.Alias, i), "-i", tmp.Name())
	if out, err := exec.Command("crlutil", args...).CombinedOutput(); err != nil {
		t.log.Err("Cannot update NSSDB filename: %s (%s)", dir, strings.TrimSpace(string(out)))
	}
	// fetch-crl counts an NSS failure as a successful write.
	return true
}

// saveState writes every index's state (non-fatal when there is no
// statedir, unlike fetch-crl, whose per-anchor postexec then never ran).
func (t *taRun) saveState() bool {
	if t.set["statedir"] == "" {
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

// feedDirmngr loads a newly installed CRL into a running dirmngr
// (dirmngr_socket / --dirmngr).
func (t *taRun) feedDirmngr(v *verified) {
	sock := t.r.Cfg["_"]["dirmngr_socket"]
	if sock == "" {
		return
	}
	dir := t.r.Cfg["_"]["output"]
	tmp, err := os.CreateTemp(dir, ".fetch-crl-dirmngr-*.crl")
	if err != nil {
		t.log.Warn("cannot feed dirmngr: %v", err)
		return
	}
	defer os.Remove(tmp.Name())
	tmp.Write(v.der)
	tmp.Close()
	c, err := assuan.Dial(sock)
	if err != nil {
		t.log.Warn("cannot feed dirmngr at %s: %v", sock, err)
		return
	}
	defer c.Close()
	if err := c.Transact(context.Background(), "LOADCRL "+assuan.EscapePlus(tmp.Name()), &assuan.Handlers{}); err != nil {
		t.log.Warn("dirmngr refused the CRL of %s: %s", t.a.Alias, gpgerr.CodeOf(err).Error())
		return
	}
	t.log.Verbose(2, "CRL of %s loaded into dirmngr", t.a.Alias)
}
