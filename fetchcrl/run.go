package fetchcrl

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Runner executes one fetch-crl run.
type Runner struct {
	Cfg *Settings
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
	s := r.Cfg
	glog := r.Log.Global()
	if n := s.RandomWait; n > 0 {
		d := rand.IntN(n)
		glog.Verbose(2, "Sleeping %d seconds before continuing", d)
		time.Sleep(time.Duration(d) * time.Second)
	}
	files := listAnchors(s, positional, glog)
	if len(files) == 0 {
		glog.Warn("No trust anchors to process")
	}
	if s.Parallelism <= 0 {
		for i, f := range files {
			r.anchor(ctx, f, false).Flush()
			r.progress(i+1, len(files))
		}
	} else {
		r.parallel(ctx, files)
	}
	if pe := s.Postexec; pe != "" {
		glog.Verbose(2, "Executing global postexec %s", pe)
		if err := runPostexec(pe, "v1", "global", s.Infodir, s.Cadir, s.Output); err != nil {
			glog.Err("%v", err)
		}
	}
	if r.Out != nil && len(files) > 0 {
		fmt.Fprintf(r.Out, "\rfetch-crl: %d anchors: %d CRLs installed or updated, %d unchanged, %d failed\033[K\n",
			len(files), r.summary.fetched, r.summary.unchanged, r.summary.failed)
	}
	return r.Log.ExitStatus(s.RCMode)
}

// parallel processes up to Parallelism anchors at once and prints their
// output in metadata order, as fetch-crl prints its workers'.
func (r *Runner) parallel(ctx context.Context, files []string) {
	sinks := make([]*Sink, len(files))
	sem := make(chan struct{}, r.Cfg.Parallelism)
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
	for _, s := range sinks {
		s.Flush()
	}
}

func (r *Runner) progress(done, total int) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, "\rfetch-crl: %d/%d trust anchors", done, total)
	}
}

func (r *Runner) count(fetched, unchanged, failed int) {
	r.mu.Lock()
	r.summary.fetched += fetched
	r.summary.unchanged += unchanged
	r.summary.failed += failed
	r.mu.Unlock()
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

// taRun is the work on one trust anchor.
type taRun struct {
	r      *Runner
	s      *Settings
	a      *Anchor
	set    AnchorSettings
	log    *Sink
	cas    []caFile
	states []state
	crls   []*verified // per index; nil = nothing new
	data   []stateData // per index: the state's b64data
	spools []*body     // spool files to close at the end
}

// keep registers a spool file to close when the anchor is done.
func (t *taRun) keep(b *body) *body {
	t.spools = append(t.spools, b)
	return b
}

// closeSpools releases the anchor's spool files and state files.
func (t *taRun) closeSpools() {
	for _, b := range t.spools {
		b.close()
	}
	for _, d := range t.data {
		if d.file != nil {
			d.file.Close()
		}
	}
}

// caFile is one of the anchor's CA certificates (cert nil when the file
// cannot be read or parsed).
type caFile struct {
	path string
	cert *x509.Certificate
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
	set := r.Cfg.Anchor(a.Alias, a.Name, a.Status)
	log := r.Log.Anchor(set.NoWarnings, set.NoErrors, buffered)
	log.buf = append(pre.buf, log.buf...)
	log.errs, log.retrErrs = pre.errs, pre.retrErrs
	t := &taRun{r: r, s: r.Cfg, a: a, set: set, log: log}
	defer t.closeSpools()
	t.loadState()
	// With @HASH@ in catemplate the CA is found from the CRL's issuer,
	// so it is looked up after the download (in retrieve).
	if !hashTemplate(set.CATemplates) && !t.findCAs("") {
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
	if written && set.Postexec != "" {
		log.Verbose(2, "Executing postexec %s for %s", set.Postexec, a.Alias)
		if err := runPostexec(set.Postexec, "v1", "ta", a.Alias, a.MetaFile, r.Cfg.Cadir, r.Cfg.Output); err != nil {
			log.Err("%v", err)
		}
	}
	return log
}

func hashTemplate(templates []string) bool {
	for _, t := range templates {
		if strings.Contains(t, "@HASH@") {
			return true
		}
	}
	return false
}

// findCAs looks the CA files up (hash: the CRL issuer's subject hash for
// @HASH@ templates) and reads them once for the whole anchor.
func (t *taRun) findCAs(hash string) bool {
	paths := caFiles(t.a, &t.set, hash)
	if len(paths) == 0 {
		t.log.Err("Cannot find any CA for %s in %s", t.a.Alias, t.set.Cadir)
		return false
	}
	t.cas = make([]caFile, len(paths))
	for i, p := range paths {
		t.log.Verbose(3, "Added CA file %d: %s", i, p)
		t.cas[i].path = p
		if b, err := os.ReadFile(p); err == nil {
			t.cas[i].cert, _ = parseCert(b)
		}
	}
	return true
}

// retrieve downloads (or takes from the state cache) and verifies every
// index. false aborts the anchor (verification failure).
func (t *taRun) retrieve(ctx context.Context) bool {
	t.log.Verbose(2, "Retrieving CRLs for %s", t.a.Alias)
	for i, urls := range t.a.URLs {
		t.log.Verbose(3, "Retrieving CRL for %s index %d", t.a.Alias, i)
		got, ok := t.cached(i)
		if !ok {
			got, ok = t.download(ctx, i, urls)
		}
		if !ok {
			t.downloadFailed(i)
			continue
		}
		t.log.Verbose(4, "Got %d bytes of data (sum=%d)", got.raw.size, got.raw.perlSum())
		d := t.decode(got.raw)
		if t.cas == nil {
			h := d.issuerHash()
			if h == "" {
				t.log.Verbose(3, "Inferred CA template HASH failed for %s", t.a.Alias)
			}
			if !t.findCAs(h) {
				return false
			}
		}
		ver := t.verify(i, d)
		if ver == nil {
			return false
		}
		ver.got = got
		t.clampFreshness(ver)
		t.crls[i] = ver
	}
	return true
}
