package integration

import (
	"bytes"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/internal/ftptest"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// fcLab is a trust-anchor directory with CAs, .info/.crl_url metadata and
// an HTTP server for their CRLs.
type fcLab struct {
	dir, certs, base string
	mu               sync.Mutex
	files            map[string][]byte
	mtimes           map[string]time.Time
	serial           int
	cas              map[string]*testpki.Cert
}

func (l *fcLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	data, ok := l.files[r.URL.Path]
	mtime := l.mtimes[r.URL.Path]
	l.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	// ServeContent sends Last-Modified and answers HEAD and
	// If-Modified-Since as a static web server does.
	http.ServeContent(w, r, r.URL.Path, mtime, bytes.NewReader(data))
}

// serve publishes data at path with a Last-Modified later than any
// earlier version's.
func (l *fcLab) serve(path string, data []byte) {
	l.mu.Lock()
	l.serial++
	l.files[path] = data
	l.mtimes[path] = time.Now().Add(-time.Hour).Truncate(time.Second).Add(time.Duration(l.serial) * time.Second)
	l.mu.Unlock()
}

func newFCLab(t *testing.T) *fcLab { return newFCLabB(t) }

func newFCLabB(t testing.TB) *fcLab {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil) // the lab serves, and needs its own address first
	l := &fcLab{dir: t.TempDir(), base: "http://" + srv.Listener.Addr().String(), files: map[string][]byte{}, mtimes: map[string]time.Time{}, cas: map[string]*testpki.Cert{}}
	srv.Config.Handler = l
	srv.Start()
	t.Cleanup(srv.Close)
	l.certs = filepath.Join(l.dir, "certs")
	os.MkdirAll(l.certs, 0o755)
	return l
}

// addCA creates a CA; style "info" writes <name>.pem + <name>.info, style
// "crl_url" writes <hash>.0 + <hash>.crl_url and returns the hash.
// addCAB adds an IGTF-style RSA CA (<name>.pem + <name>.info).
func (l *fcLab) addCAB(name, info string) {
	l.addCA(nil, name, "info", testpki.RSA, info)
}

func (l *fcLab) addCA(t *testing.T, name, style string, kt testpki.KeyType, info string) string {
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name(name, "Test", "NL"), KeyType: kt})
	l.cas[name] = ca
	switch style {
	case "info":
		testpki.WriteFile(l.certs, name+".pem", ca.PEM())
		testpki.WriteFile(l.certs, name+".info", []byte(info))
		return name
	default:
		h, _ := certid.SubjectHash(ca.Cert.RawSubject)
		testpki.WriteFile(l.certs, h+".0", ca.PEM())
		testpki.WriteFile(l.certs, h+".crl_url", []byte(info))
		return h
	}
}

func (l *fcLab) crl(name string, number int64, this, next time.Time, n int) []byte {
	var es []testpki.Entry
	for i := range n {
		es = append(es, testpki.Entry{Serial: big.NewInt(int64(1000 + i)), Reason: i%3 - 1, Time: this})
	}
	return (&testpki.CRLSpec{Issuer: l.cas[name], Number: big.NewInt(number), ThisUpdate: this, NextUpdate: next, Entries: es}).Build()
}

type fcResult struct {
	code   int
	lines  []string
	files  map[string][]byte
	states map[string]map[string]string
	maxRSS int64 // peak resident size of the run, bytes
}

// runFC runs a fetch-crl program on the lab with its own output and state
// directories (reused across calls with the same tag).
func (l *fcLab) runFC(t *testing.T, prog, tag string, extra ...string) fcResult {
	t.Helper()
	out := filepath.Join(l.dir, tag, "out")
	state := filepath.Join(l.dir, tag, "state")
	confd := filepath.Join(l.dir, "conf.d")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(state, 0o755)
	os.MkdirAll(confd, 0o755)
	conf := filepath.Join(l.dir, "fetch-crl.conf")
	if _, err := os.Stat(conf); err != nil {
		os.WriteFile(conf, []byte("# test configuration\n"), 0o644)
	}
	args := append([]string{"-c", conf, "--cfgdir", confd, "-l", l.certs, "-o", out, "-s", state}, extra...)
	// Run through the maxrss wrapper (fetchcrl_mem_test.go): a child
	// forked from this test process would inherit its peak size.
	rss := filepath.Join(t.TempDir(), "maxrss")
	cmd := exec.Command(os.Args[0], append([]string{prog}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC", "http_proxy=", "HTTP_PROXY=", "FCMEM_WRAP="+rss)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stdout
	err := cmd.Run()
	res := fcResult{files: map[string][]byte{}, states: map[string]map[string]string{}}
	if b, err := os.ReadFile(rss); err == nil {
		kb, _ := strconv.ParseInt(string(b), 10, 64)
		res.maxRSS = kb << 10
	}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line != "" {
			res.lines = append(res.lines, strings.ReplaceAll(line, filepath.Join(l.dir, tag), "<TAG>"))
		}
	}
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(out, p)
			res.files[rel] = b
		}
		return nil
	})
	ents, _ := os.ReadDir(state)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(state, e.Name()))
		kv := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				kv[k] = v
			}
		}
		res.states[e.Name()] = kv
	}
	return res
}

func keys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// compareFC asserts the same exit code, the same output files with the
// same bytes, and equivalent state files.
func compareFC(t *testing.T, what string, ours, perl fcResult) {
	t.Helper()
	if a, b := strings.Join(ours.lines, "\n"), strings.Join(perl.lines, "\n"); a != b {
		t.Errorf("%s: output differs\n%s", what, diff(b, a))
	}
	if ours.code != perl.code {
		t.Errorf("%s: exit %d, Perl fetch-crl %d\n ours: %q\n perl: %q", what, ours.code, perl.code, ours.lines, perl.lines)
	}
	if a, b := strings.Join(keys(ours.files), " "), strings.Join(keys(perl.files), " "); a != b {
		t.Errorf("%s: files\n ours: %s\n perl: %s", what, a, b)
	}
	for name, b := range perl.files {
		if o, ok := ours.files[name]; ok && !bytes.Equal(o, b) {
			t.Errorf("%s: %s differs (%d bytes ours, %d Perl)", what, name, len(o), len(b))
		}
	}
	if a, b := strings.Join(keys(ours.states), " "), strings.Join(keys(perl.states), " "); a != b {
		t.Errorf("%s: state files\n ours: %s\n perl: %s", what, a, b)
	}
	for name, ps := range perl.states {
		os := ours.states[name]
		for _, k := range []string{"alias", "index", "b64data", "lastupdate", "nextupdate", "sha1fp", "sourceurl", "sum", "lastmod"} {
			if os[k] != ps[k] {
				t.Errorf("%s: state %s key %s: ours %.60q, Perl %.60q", what, name, k, os[k], ps[k])
			}
		}
		for _, k := range keys(ps) {
			if _, ok := os[k]; !ok {
				t.Errorf("%s: state %s lacks key %s", what, name, k)
			}
		}
	}
}

func first1(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func perlFetchCRL(t *testing.T) string {
	p := requireTool(t, "fetch-crl")
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl missing")
	}
	return p
}

// TestFetchCRLMatchesPerl runs Debian's Perl fetch-crl and ours on the same
// generated trust-anchor directory and compares exit codes, output files
// (names and bytes) and state files, over a sequence of runs.
func TestFetchCRLMatchesPerl(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "TestCAOne", "info", testpki.RSA, fmt.Sprintf("alias = TestCAOne\nstatus = accredited:classic\ncrl_url = %s/missing-ca1.crl;%s/ca1.crl\n", l.base, l.base))
	two := l.addCA(t, "TestCATwo", "crl_url", testpki.RSA, fmt.Sprintf("# old style\n%s/ca2.pem\n", l.base))
	l.addCA(t, "TestCAThree", "info", testpki.ECDSA, fmt.Sprintf("alias = TestCAThree\nstatus = discontinued\ncrl_url.0 = %s/ca3.crl\ncrl_url.1 = %s/ca3b.crl\n", l.base, l.base))
	testpki.WriteFile(l.certs, "policy-igtf-classic.info", []byte("alias = policy-igtf-classic\nrequires = TestCAOne\n"))
	l.serve("/ca1.crl", l.crl("TestCAOne", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 100))
	l.serve("/ca2.pem", testpki.PEM(l.crl("TestCATwo", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 5)))
	l.serve("/ca3.crl", l.crl("TestCAThree", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 3))
	l.serve("/ca3b.crl", testpki.PEM(l.crl("TestCAThree", 2, now.Add(-time.Hour), now.Add(48*time.Hour), 0)))
	_ = two

	steps := []struct {
		name  string
		setup func()
		args  []string
	}{
		{"first-run", nil, []string{"-v"}},
		{"second-run-cached", nil, nil},
		{"all-formats", nil, []string{"--format", "pem", "--format", "der", "--format", "openssl"}},
		{"single-mode", nil, []string{"--define", "opensslmode=single"}},
		{"prepend-postpend", nil, []string{"--define", "prepend_url=" + l.base + "/mirror/@ALIAS@.r@R@", "--define", "postpend_url=" + l.base + "/ca1.crl"}},
		{"quiet", nil, []string{"-q"}},
		{"logmode-direct", nil, []string{"-v", "--define", "logmode=direct"}},
		{"logmode-cache", nil, []string{"-v", "--define", "logmode=cache"}},
		{"unknown-option", nil, []string{"--bogus"}},
		{"anchor-by-name", nil, []string{"TestCAOne", "-v"}},
		{"missing-anchor", nil, []string{"NoSuchCA"}},
		{"parallel", nil, []string{"-p", "2"}},
		{"rollback", func() {
			l.serve("/ca1.crl", l.crl("TestCAOne", 0, now.Add(-3*time.Hour), now.Add(48*time.Hour), 1))
		}, nil},
		{"bad-signature", func() {
			spec := &testpki.CRLSpec{Issuer: l.cas["TestCAOne"], Number: big.NewInt(3), ThisUpdate: now, NextUpdate: now.Add(48 * time.Hour), BadSignature: true}
			l.serve("/ca1.crl", spec.Build())
		}, []string{"--define", "rcmode=differentiated"}},
		{"expired", func() {
			l.serve("/ca1.crl", l.crl("TestCAOne", 4, now.Add(-72*time.Hour), now.Add(-time.Hour), 1))
		}, nil},
		{"404-past-grace", func() {
			l.mu.Lock()
			delete(l.files, "/ca1.crl")
			l.mu.Unlock()
		}, []string{"-a", "0", "--define", "rcmode=differentiated"}},
		{"noretrievalerrors", nil, []string{"-a", "0", "--define", "rcmode=noretrievalerrors"}},
		{"within-grace", nil, []string{"-a", "24"}},
	}
	for _, st := range steps {
		if st.setup != nil {
			st.setup()
		}
		o := l.runFC(t, ours, "ours", st.args...)
		p := l.runFC(t, perl, "perl", st.args...)
		if st.name == "unknown-option" {
			// Only the exit code and the first line are comparable: the
			// help texts differ.
			if o.code != p.code || len(o.lines) == 0 || len(p.lines) == 0 || o.lines[0] != p.lines[0] {
				t.Errorf("unknown option: ours %d %q, Perl %d %q", o.code, first1(o.lines), p.code, first1(p.lines))
			}
			continue
		}
		compareFC(t, st.name, o, p)
		if testing.Verbose() {
			t.Logf("%s: ours %d %q\n perl %d %q", st.name, o.code, o.lines, p.code, p.lines)
		}
	}
}

// TestFetchCRLNSSMatchesPerl imports the CRLs into NSS databases with both
// programs and compares what crlutil lists.
func TestFetchCRLNSSMatchesPerl(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	certutil := requireTool(t, "certutil")
	crlutil := requireTool(t, "crlutil")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "NSSCA", "info", testpki.RSA, fmt.Sprintf("alias = NSSCA\ncrl_url = %s/nss.crl\n", l.base))
	l.serve("/nss.crl", l.crl("NSSCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 10))
	var listings [2]string
	for i, prog := range []string{ours, perl} {
		tag := []string{"ours", "perl"}[i]
		db := filepath.Join(l.dir, tag, "out")
		os.MkdirAll(db, 0o755)
		if out, err := exec.Command(certutil, "-N", "-d", "sql:"+db, "--empty-password").CombinedOutput(); err != nil {
			t.Fatalf("certutil -N: %v\n%s", err, out)
		}
		res := l.runFC(t, prog, tag, "--format", "nss", "--define", "nonssverify=1")
		if res.code != 0 {
			t.Fatalf("%s: exit %d: %q", tag, res.code, res.lines)
		}
		out, err := exec.Command(crlutil, "-L", "-d", "sql:"+db).CombinedOutput()
		if err != nil {
			t.Fatalf("crlutil -L: %v\n%s", err, out)
		}
		listings[i] = string(out)
	}
	if listings[0] != listings[1] || !strings.Contains(listings[0], "CRL") {
		t.Errorf("NSS listings differ:\n--- ours\n%s--- perl\n%s", listings[0], listings[1])
	}
}

// TestFetchCRLImprovements covers what fetch-crl 3 gets wrong: @HASH@
// templates with OpenSSL 3, CRLF PEM, stale .rN files when the CRL count
// drops, --clean keeping dual-mode old-hash files, --define key= unsetting,
// and feeding a running dirmngr.
func TestFetchCRLImprovements(t *testing.T) {
	ours := bin(t, "fetch-crl")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	h := l.addCA(t, "HashCA", "crl_url", testpki.RSA, l.base+"/hash.pem\n")
	l.serve("/hash.pem", bytes.ReplaceAll(testpki.PEM(l.crl("HashCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 2)), []byte("\n"), []byte("\r\n")))
	l.addCA(t, "Multi", "info", testpki.ECDSA, fmt.Sprintf("alias = Multi\ncrl_url.0 = %s/m0.crl\ncrl_url.1 = %s/m1.crl\n", l.base, l.base))
	l.serve("/m0.crl", l.crl("Multi", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	l.serve("/m1.crl", l.crl("Multi", 2, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	multiHash, _ := certid.SubjectHash(l.cas["Multi"].Cert.RawSubject)

	res := l.runFC(t, ours, "imp", "--define", "catemplate=@HASH@.0;@ALIAS@.pem")
	if res.code != 0 {
		t.Fatalf("@HASH@ + CRLF PEM: exit %d %q", res.code, res.lines)
	}
	for _, f := range []string{h + ".r0", multiHash + ".r0", multiHash + ".r1"} {
		if _, ok := res.files[f]; !ok {
			t.Errorf("missing %s in %v", f, keys(res.files))
		}
	}
	// The CRL count drops to one: the .r1 files and state go.
	testpki.WriteFile(l.certs, "Multi.info", []byte(fmt.Sprintf("alias = Multi\ncrl_url = %s/m0.crl\n", l.base)))
	res = l.runFC(t, ours, "imp")
	if _, ok := res.files[multiHash+".r1"]; ok || res.code != 0 {
		t.Errorf("stale %s.r1 kept (exit %d)", multiHash, res.code)
	}
	if _, ok := res.states["Multi.1.state"]; ok {
		t.Error("stale Multi.1.state kept")
	}
	// --clean removes orphans but keeps the old-hash file of a hash-named CA.
	out := filepath.Join(l.dir, "imp", "out")
	testpki.WriteFile(out, "deadbeef.r0", []byte("orphan"))
	oldHash := certid.SubjectHashOld(l.cas["HashCA"].Cert.RawSubject)
	if _, ok := res.files[oldHash+".r0"]; !ok {
		t.Fatalf("dual mode did not write %s.r0", oldHash)
	}
	res = l.runFC(t, ours, "imp", "--clean", "-v")
	if _, ok := res.files["deadbeef.r0"]; ok || res.code != 0 {
		t.Errorf("--clean kept the orphan (exit %d, %q)", res.code, res.lines)
	}
	if _, ok := res.files[oldHash+".r0"]; !ok {
		t.Errorf("--clean removed the old-hash CRL %s.r0", oldHash)
	}
	// --define key= unsets a configured toggle.
	conf := filepath.Join(l.dir, "fetch-crl.conf")
	os.WriteFile(conf, []byte("nowarnings\n"), 0o644)
	l.mu.Lock()
	delete(l.files, "/m0.crl")
	l.mu.Unlock()
	res = l.runFC(t, ours, "imp", "--define", "nocache=1")
	if strings.Contains(strings.Join(res.lines, "\n"), "WARN") {
		t.Errorf("nowarnings ignored: %q", res.lines)
	}
	res = l.runFC(t, ours, "imp", "--define", "nowarnings=", "--define", "nocache=1")
	if !strings.Contains(strings.Join(res.lines, "\n"), "WARN CRL retrieval for Multi failed") {
		t.Errorf("--define nowarnings= did not unset: %q", res.lines)
	}
	os.WriteFile(conf, []byte("# test configuration\n"), 0o644)
	l.serve("/m0.crl", l.crl("Multi", 3, now.Add(-time.Minute), now.Add(48*time.Hour), 1))

	// Feed a running dirmngr: the new CRL lands in its cache.
	daemon := bin(t, "dirmngr")
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "multi.crt", l.cas["Multi"].DER())
	startDaemon(t, daemon, home)
	res = l.runFC(t, ours, "imp", "--dirmngr", filepath.Join(home, "S.dirmngr"))
	if res.code != 0 {
		t.Fatalf("--dirmngr run: %d %q", res.code, res.lines)
	}
	list := gca(t, home, "LISTCRLS")
	if !strings.Contains(list, "CN=Multi,O=Test,C=NL") {
		t.Errorf("dirmngr was not fed:\n%s", list)
	}
	gca(t, home, "KILLDIRMNGR")
}

// TestFetchCRLStateInterchange: a site can switch implementations in
// either direction without a cold start, and postexec hooks get
// fetch-crl's argument lists.
func TestFetchCRLStateInterchange(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "SwapCA", "info", testpki.RSA, fmt.Sprintf("alias = SwapCA\ncrl_url = %s/swap.crl\n", l.base))
	l.serve("/swap.crl", l.crl("SwapCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 20))
	hook := filepath.Join(l.dir, "hook.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\necho \"$@\" >> \"$0.log\"\n"), 0o755)
	conf := filepath.Join(l.dir, "fetch-crl.conf")
	os.WriteFile(conf, []byte("postexec = "+hook+"\n[SwapCA]\npostexec = "+hook+"\n"), 0o644)
	var runs []fcResult
	for _, prog := range []string{perl, ours, perl, ours} {
		runs = append(runs, l.runFC(t, prog, "shared", "-v"))
	}
	for i, r := range runs {
		if r.code != 0 {
			t.Errorf("run %d: exit %d %q", i, r.code, r.lines)
		}
	}
	for i := 1; i < len(runs); i++ {
		for name, b := range runs[0].files {
			if !bytes.Equal(runs[i].files[name], b) {
				t.Errorf("run %d: %s changed", i, name)
			}
		}
		if runs[i].states["SwapCA.0.state"]["b64data"] != runs[0].states["SwapCA.0.state"]["b64data"] {
			t.Errorf("run %d: state data differs", i)
		}
	}
	log, _ := os.ReadFile(hook + ".log")
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	// Per run: the anchor hook, then the global hook.
	if len(lines) != 8 || lines[0] != lines[2] || lines[1] != lines[3] ||
		!strings.HasPrefix(lines[0], "v1 ta SwapCA ") || !strings.HasPrefix(lines[1], "v1 global ") {
		t.Errorf("postexec calls differ between implementations:\n%s", log)
	}
}

// TestFetchCRLHTTPOptions: user_agent, cache_control_request and
// http_proxy reach the wire; a per-anchor noerrors does not leak to the
// next anchor (fetch-crl 3 bug B6).
func TestFetchCRLHTTPOptions(t *testing.T) {
	ours := bin(t, "fetch-crl")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "AgentCA", "info", testpki.ECDSA, fmt.Sprintf("alias = AgentCA\ncrl_url = %s/agent.crl\n", l.base))
	l.serve("/agent.crl", l.crl("AgentCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	var mu sync.Mutex
	var seen []string
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String()+" UA="+r.UserAgent()+" CC="+r.Header.Get("Cache-Control"))
		mu.Unlock()
		l.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(ln)
	defer proxy.Close()
	conf := filepath.Join(l.dir, "fetch-crl.conf")
	os.WriteFile(conf, []byte("cache_control_request = 600\nhttp_proxy = http://"+ln.Addr().String()+"/\n[AgentCA]\nuser_agent = MyAgent/1.0\n"), 0o644)
	res := l.runFC(t, ours, "http")
	if res.code != 0 {
		t.Fatalf("exit %d %q", res.code, res.lines)
	}
	mu.Lock()
	got := strings.Join(seen, "\n")
	mu.Unlock()
	if !strings.Contains(got, "GET "+l.base+"/agent.crl UA=MyAgent/1.0 CC=max-age=600") {
		t.Errorf("proxy saw %q", got)
	}

	// noerrors on one anchor does not hide the next anchor's error.
	l.addCA(t, "QuietCA", "info", testpki.ECDSA, fmt.Sprintf("alias = QuietCA\ncrl_url = %s/quiet.crl\n", l.base))
	l.addCA(t, "ZLoudCA", "info", testpki.ECDSA, fmt.Sprintf("alias = ZLoudCA\ncrl_url = %s/loud.crl\n", l.base))
	l.serve("/quiet.crl", (&testpki.CRLSpec{Issuer: l.cas["QuietCA"], ThisUpdate: now, NextUpdate: now.Add(time.Hour), BadSignature: true}).Build())
	os.WriteFile(conf, []byte("[QuietCA]\nnoerrors\n"), 0o644)
	res = l.runFC(t, ours, "http", "-a", "0")
	all := strings.Join(res.lines, "\n")
	if res.code != 1 || strings.Contains(all, "ERROR CRL verification failed for QuietCA") || !strings.Contains(all, "ERROR CRL retrieval for ZLoudCA failed, CRL not updated") {
		t.Errorf("noerrors leak: exit %d\n%s", res.code, all)
	}
}

// TestFetchCRLFTP fetches over ftp:// with both implementations.
func TestFetchCRLFTP(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	srv, err := ftptest.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "FtpCA", "info", testpki.RSA, "alias = FtpCA\ncrl_url = ftp://"+srv.Addr+"/pub/ftp.crl\n")
	srv.Put("/pub/ftp.crl", l.crl("FtpCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 3))
	o := l.runFC(t, ours, "ours", "-v")
	p := l.runFC(t, perl, "perl", "-v")
	t.Logf("ours %q\nperl %q", o.lines, p.lines)
	if o.code != 0 || p.code != 0 {
		t.Fatalf("exit ours %d %q, Perl %d %q", o.code, o.lines, p.code, p.lines)
	}
	if strings.Join(keys(o.files), " ") != strings.Join(keys(p.files), " ") {
		t.Fatalf("files: ours %v, Perl %v", keys(o.files), keys(p.files))
	}
	for name, b := range p.files {
		if !bytes.Equal(o.files[name], b) {
			t.Errorf("%s differs", name)
		}
	}
}
