package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// procStatus returns a field of /proc/<pid>/status in bytes (VmHWM, VmRSS).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s for pid %d", field, pid)
	return 0
}

// hostileCRLServer serves bodies that cost a careless fetcher memory:
// a gzip bomb (256 MiB of zeros in ~256 KB, sent with Content-Encoding
// gzip whether asked or not), an endless text body, and an endless PEM
// block of blanks. The endless bodies stop when the client goes away.
func hostileCRLServer(t *testing.T) string {
	t.Helper()
	// 256 gzip members of 1 MiB of zeros each (a multi-member stream
	// inflates to their concatenation).
	var member, bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	for range 256 {
		bomb.Write(member.Bytes())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endless := func(w http.ResponseWriter, r *http.Request, head, chunk string) {
		w.Write([]byte(head))
		buf := []byte(strings.Repeat(chunk, 64<<10/len(chunk)))
		for i := 0; i < 20_000; i++ { // at most ~1.3 GB, bounded
			if _, err := w.Write(buf); err != nil || r.Context().Err() != nil {
				return
			}
		}
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bomb.crl":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
		case "/endless-text.crl":
			endless(w, r, "", "this is not a CRL\n")
		case "/endless-pem.crl":
			endless(w, r, "-----BEGIN X509 CRL-----\n", "  \r\n")
		default:
			http.NotFound(w, r)
		}
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// TestHostileBodiesMemory (issue 13 item 1): hostile distribution points
// and LOADCRL of /dev/urandom raise the daemon's peak resident size
// (VmHWM, reset before the fetches) by less than 64 MB, the resident size
// afterwards is back near where it was, and each load fails cleanly.
// Before, the gzip bomb alone cost about 1.2 GB.
func TestHostileBodiesMemory(t *testing.T) {
	ours := bin(t, "dirmngr")
	base := hostileCRLServer(t)
	home := newHome(t)
	pid := startDaemon(t, ours, home)
	gca(t, home, "GETINFO version", "LISTCRLS") // warm up
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting VmHWM: %v", err)
	}
	rss0 := procStatus(t, pid, "VmRSS")
	hwm0 := procStatus(t, pid, "VmHWM")
	start := time.Now()
	out := normalize(gca(t, home,
		"LOADCRL --url "+base+"/bomb.crl",
		"LOADCRL --url "+base+"/endless-text.crl",
		"LOADCRL --url "+base+"/endless-pem.crl",
		"LOADCRL /dev/urandom",
		"LOADCRL /dev/zero",
	))
	took := time.Since(start)
	hwm := procStatus(t, pid, "VmHWM")
	rss := procStatus(t, pid, "VmRSS")
	t.Logf("VmHWM %d → %d kB (+%d kB), VmRSS %d → %d kB, %s", hwm0>>10, hwm>>10, (hwm-hwm0)>>10, rss0>>10, rss>>10, took.Round(time.Millisecond))
	if n := strings.Count(out, "ERR 167772294 BER error"); n != 5 {
		t.Errorf("want 5 BER errors, got\n%s", out)
	}
	if hwm-hwm0 > 64<<20 {
		t.Errorf("peak resident size grew by %d MB (limit 64 MB)", (hwm-hwm0)>>20)
	}
	if rss-rss0 > 32<<20 {
		t.Errorf("resident size stayed %d MB above its start", (rss-rss0)>>20)
	}
}

// TestRequestTimeoutOption (issue 13 item 10): a distribution point that
// accepts the connection and never answers holds a request only for
// request-timeout seconds (here 1, from dirmngr.conf), then the command
// fails with Timeout and the next one is served.
func TestRequestTimeoutOption(t *testing.T) {
	ours := bin(t, "dirmngr")
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go hs.Serve(ln)
	defer hs.Close()
	defer close(release)
	home := newHome(t)
	os.WriteFile(home+"/dirmngr.conf", []byte("request-timeout 1\n"), 0o600)
	startDaemon(t, ours, home)
	out := normalize(gca(t, home, "LOADCRL --url http://"+ln.Addr().String()+"/hung.crl", "GETINFO version"))
	if !strings.Contains(out, "ERR 167772222 Timeout <Dirmngr>\n") || !strings.Contains(out, "D 2.2.40\nOK\n") {
		t.Fatalf("hung distribution point:\n%s", out)
	}
}

// TestFetchCRLHostileBodies (issue 13 item 1, fetch-crl): distribution
// points answering with a gzip bomb, an endless text body or an endless
// PEM block of blanks cost fetch-crl less than 64 MB over a normal run's
// peak resident size, and each is reported as a failed CRL.
func TestFetchCRLHostileBodies(t *testing.T) {
	ours := bin(t, "fetch-crl")
	hostile := hostileCRLServer(t)
	l := newFCLab(t)
	now := time.Now()
	l.addCA(t, "GoodCA", "crl_url", testpki.RSA, l.base+"/good.crl\n")
	l.serve("/good.crl", l.crl("GoodCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 2))
	base := l.runFC(t, ours, "good")
	if base.code != 0 {
		t.Fatalf("normal run: exit %d %q", base.code, base.lines)
	}
	for _, p := range []string{"/bomb.crl", "/endless-text.crl", "/endless-pem.crl"} {
		l.addCA(t, "Hostile"+strings.TrimSuffix(p[1:], ".crl"), "crl_url", testpki.RSA, hostile+p+"\n")
	}
	res := l.runFC(t, ours, "hostile")
	t.Logf("peak RSS: normal run %d kB, hostile run %d kB", base.maxRSS>>10, res.maxRSS>>10)
	if res.maxRSS-base.maxRSS > 64<<20 {
		t.Errorf("hostile bodies cost %d MB more than a normal run (limit 64 MB)", (res.maxRSS-base.maxRSS)>>20)
	}
	if res.code == 0 || strings.Count(strings.Join(res.lines, "\n"), "not recognised") != 3 {
		t.Errorf("hostile CRLs not reported: exit %d\n%s", res.code, strings.Join(res.lines, "\n"))
	}
}

// BenchmarkLoadPEMMemory loads a big PEM CRL (BENCH_PEM_ENTRIES entries,
// default 3M: about 120 MB of DER, 160 MB of PEM; before issue 13 such a
// CRL peaked at 361 MB) into our daemon and reports the growth of its peak
// resident size during the load (VmHWM reset before).
func BenchmarkLoadPEMMemory(b *testing.B) {
	ours := buildPlain(b)
	n := 3_000_000
	if v := os.Getenv("BENCH_PEM_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("PEM Bench Root", "", "")})
	t0 := time.Now().Add(-time.Duration(n+3600) * time.Second)
	set := testpki.RealSerials(n, 7, testpki.RevocationOrder)
	spec := &testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour), Count: n,
		Gen: func(i int) testpki.Entry { return set.Entry(i, t0) }}
	crlFile := testpki.WriteFile(b.TempDir(), "big.pem", testpki.PEM(spec.Build()))
	set, spec = nil, nil
	fi, _ := os.Stat(crlFile)
	for range b.N {
		home := newHome(b)
		pid := startDaemon(b, ours, home)
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
		hwm0 := peakRSS(pid)
		c, err := assuan.Dial(filepath.Join(home, "S.dirmngr"))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := c.Transact(context.Background(), "LOADCRL "+crlFile, answerer(root)); err != nil {
			b.Fatalf("LOADCRL: %v", err)
		}
		took := time.Since(start)
		c.Close()
		grew := peakRSS(pid) - hwm0
		fmt.Printf("\nPEM CRL, %d entries, %.1f MB: LOADCRL %.1f s, VmHWM +%.1f MB\n", n, float64(fi.Size())/1e6, took.Seconds(), float64(grew)/1e6)
		b.ReportMetric(float64(grew)/1e6, "hwm-growth-MB")
		b.ReportMetric(took.Seconds(), "load-s")
		gca(b, home, "KILLDIRMNGR")
	}
}
