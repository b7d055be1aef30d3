package integration

import (
	"bytes"
	"compress/gzip"
	"fmt"

	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// fcMemLimit is issue 13's bound on the memory one fetch may cost.
const fcMemLimit = 64 << 20

// TestFetchCRLMemoryBounded serves hostile bodies (an endless one, a gzip
// bomb) and a large valid CRL (over 100 MB of PEM) over HTTP and file://
// to our fetch-crl, a build without the race detector, and checks that
// the child's peak resident size (getrusage maxrss) stays under 64 MB
// (issue 13: an endless body cost 1.26 GB). The large CRL must also be
// installed, and a second run (a conditional GET answered 304, the CRL
// taken from the state file) must stay as small.
func TestFetchCRLMemoryBounded(t *testing.T) {
	prog := plainProgram(t, "fetch-crl")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	big := filepath.Join(l.dir, "big.pem")
	writeBigPEMCRL(t, l, big, now)
	srv := memServer(t, big)
	cases := []struct {
		name, url string
		installed bool   // the CRL is written
		log       string // in the output
	}{
		{"endless-http", srv + "/endless", false, "CRL data for BigCA/0 not recognised"},
		{"gzip-bomb-http", srv + "/bomb", false, "CRL data for BigCA/0 not recognised"},
		{"endless-file", "file:///dev/zero", false, "CRL data for BigCA/0 not recognised"},
		{"big-pem-http", srv + "/big.pem", true, "Writing OpenSSL file"},
		{"big-pem-http-again", srv + "/big.pem", true, "Not modified since the last retrieval, using cache"},
		{"big-pem-file", "file://" + big, true, "Writing OpenSSL file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(l.certs, "BigCA.info"), []byte("alias = BigCA\ncrl_url = "+c.url+"\n"), 0o644)
			tag := filepath.Join(l.dir, "mem-"+strings.TrimSuffix(c.name, "-again"))
			os.MkdirAll(filepath.Join(tag, "out"), 0o755)
			os.MkdirAll(filepath.Join(tag, "state"), 0o755)
			out, rss := runMeasured(t, prog, "-c", "/dev/null", "-l", l.certs, "-o", filepath.Join(tag, "out"),
				"-s", filepath.Join(tag, "state"), "-vvvv", "-T", "20")
			t.Logf("%s: peak RSS %d MB", c.name, rss>>20)
			if !strings.Contains(out, c.log) {
				t.Errorf("%s: no %q in\n%s", c.name, c.log, out)
			}
			if rss > fcMemLimit {
				t.Errorf("%s: peak RSS %d MB, limit %d MB", c.name, rss>>20, fcMemLimit>>20)
			}
			got, _ := filepath.Glob(filepath.Join(tag, "out", "*.r0"))
			if c.installed {
				fi, err := os.Stat(first1(got))
				if err != nil || fi.Size() < 100<<20 {
					t.Errorf("%s: large CRL not installed (%v %v)", c.name, got, err)
				}
			}
			if !c.installed && len(got) > 0 {
				t.Errorf("%s: something was installed: %v", c.name, got)
			}
			left, _ := filepath.Glob(filepath.Join(tag, "out", "*.tmp"))
			if len(left) > 0 {
				t.Errorf("%s: temporary files left: %v", c.name, left)
			}
		})
	}
}

// writeBigPEMCRL writes a CRL of BigCA over 100 MB in PEM to path.
func writeBigPEMCRL(t *testing.T, l *fcLab, path string, now time.Time) {
	l.addCA(t, "BigCA", "info", testpki.RSA, "alias = BigCA\n")
	serial := new(big.Int).Lsh(big.NewInt(1), 120)
	spec := &testpki.CRLSpec{Issuer: l.cas["BigCA"], Number: big.NewInt(7), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(48 * time.Hour),
		Count: 1_900_000, Gen: func(i int) testpki.Entry {
			return testpki.Entry{Serial: new(big.Int).Add(serial, big.NewInt(int64(i))), Time: now.Add(-2 * time.Hour), Reason: i % 6}
		}}
	pem := testpki.PEM(spec.Build())
	if len(pem) < 100<<20 {
		t.Fatalf("CRL of %d bytes", len(pem))
	}
	if err := os.WriteFile(path, pem, 0o644); err != nil {
		t.Fatal(err)
	}
}

// memServer serves /endless (text without end), /bomb (Content-Encoding:
// gzip, 1 GiB of zeros in about 1 MB) and /big.pem (the file big, with
// Last-Modified: conditional GETs are answered 304).
func memServer(t *testing.T, big string) string {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	member := z.Bytes() // gzip members concatenate into one stream
	mux := http.NewServeMux()
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		line := []byte(strings.Repeat("endless body ", 1000) + "\n")
		for r.Context().Err() == nil {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "application/pkix-crl")
		for range 1024 {
			if _, err := w.Write(member); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/big.pem", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, big) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// runMeasured runs prog and returns its output and its peak resident size
// in bytes: getrusage's maxrss of the exited child, as seen by a fresh,
// small wrapper process (this test binary re-executed), since a child
// inherits the maxrss of the address space it was forked from.
func runMeasured(t *testing.T, prog string, args ...string) (string, int64) {
	t.Helper()
	res := filepath.Join(t.TempDir(), "maxrss")
	cmd := exec.Command(os.Args[0], append([]string{prog}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC", "http_proxy=", "HTTP_PROXY=", "FCMEM_WRAP="+res)
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%s: %v", prog, err)
	}
	b, err := os.ReadFile(res)
	if err != nil {
		t.Fatalf("no measurement: %v\n%s", err, out)
	}
	kb, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), kb << 10
}

// init makes this test binary the wrapper of runMeasured when FCMEM_WRAP
// names the result file: it runs os.Args[1:], passes its exit status on,
// and writes the child's maxrss (kB) to the file.
func init() {
	res := os.Getenv("FCMEM_WRAP")
	if res == "" {
		return
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(125)
	}
	if !cmd.ProcessState.Exited() {
		fmt.Fprintln(os.Stderr, cmd.ProcessState)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	os.WriteFile(res, []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o644) // kB on Linux
	os.Exit(cmd.ProcessState.ExitCode())
}

// plainProgram builds one of the programs without the race detector,
// whose shadow memory would hide what the program itself uses.
func plainProgram(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/"+name)
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, name)
}
