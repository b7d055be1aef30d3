package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// buildPlain builds our dirmngr without the race detector for benchmarks.
func buildPlain(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/dirmngr")
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "dirmngr")
}

// peakRSS returns VmHWM of pid in bytes.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

type benchResult struct {
	load       time.Duration
	rss        int64
	cache      int64
	rate1      float64
	rate4      float64
	loadCPU    time.Duration // daemon CPU time (user+system) for the load
	cpuPerOp   time.Duration // daemon CPU time per ISVALID (1 connection)
	loadFailed error
}

// cpuTime returns the user+system CPU time pid has used.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100 // USER_HZ
}

// answerer answers the inquiries of LOADCRL and ISVALID.
func answerer(root *testpki.Cert) *assuan.Handlers {
	return &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
		switch kw {
		case "ISTRUSTED":
			return []byte("1"), nil
		case "SENDCERT", "SENDCERT_SKI":
			return root.DER(), nil
		}
		return []byte{}, nil
	}}
}

// benchWindow is how long each ISVALID rate is measured; benchRounds
// (BENCH_ROUNDS) is how many times, alternating between the daemons.
const benchWindow = 2 * time.Second

// revoked starts the reply to an ISVALID of a revoked certificate.
var revoked = []byte(fmt.Sprintf("ERR %d ", gpgerr.WireValue(gpgerr.SourceDirmngr, gpgerr.ErrCertRevoked)))

// benchDaemon is one daemon of a comparison, running with a CRL loaded.
type benchDaemon struct {
	prog string
	pid  int
	sock string
	home string
	res  benchResult
	r1   []float64 // ISVALID/s per round, 1 connection
	r4   []float64 // 4 connections
	cpu1 time.Duration
	n1   int64
	// The loads' wall and CPU seconds, in the order run.
	walls, cpus []float64
}

// startBench starts prog in a new home; it loads nothing.
func startBench(b *testing.B, prog string) *benchDaemon {
	d := &benchDaemon{prog: prog, home: newHome(b)}
	// BENCH_OURS_ENV=NAME=VALUE sets one variable for our daemon only
	// (e.g. GOMAXPROCS=1, to try runtime settings side by side; not for
	// BENCH_OURS_ALT's, which can be the same build without it).
	if kv := os.Getenv("BENCH_OURS_ENV"); kv != "" && !d.gnupg() && d.name() != "alt" {
		k, v, _ := strings.Cut(kv, "=")
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	d.pid = startDaemon(b, prog, d.home)
	d.sock = filepath.Join(d.home, "S.dirmngr")
	return d
}

// load runs one LOADCRL of crlFile and returns its wall and CPU seconds.
func (d *benchDaemon) load(b *testing.B, root *testpki.Cert, crlFile string) (wall, cpu float64, err error) {
	c, err := assuan.Dial(d.sock)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start, cpu0 := time.Now(), cpuTime(d.pid)
	err = c.Transact(context.Background(), "LOADCRL "+crlFile, answerer(root))
	return time.Since(start).Seconds(), (cpuTime(d.pid) - cpu0).Seconds(), err
}

// loadAll starts, for each CRL, one daemon of each program in progs and
// has each load its CRL BENCH_LOADS times (the later loads replace the
// cached CRL with the same one). The loads are interleaved: round after
// round every daemon loads once, each round starting at another CRL, so
// that the machine's slow and fast stretches (this VM's speed moves by
// tens of percent within minutes, for every daemon alike) fall on every
// order alike instead of on whichever case runs then. Each daemon keeps
// the median load time and CPU, its peak RSS after the loads and its
// cache size. The result is indexed [crl][prog].
func loadAll(b *testing.B, progs []string, root *testpki.Cert, crls []*benchCRL) [][]*benchDaemon {
	ds := make([][]*benchDaemon, len(crls))
	for i := range crls {
		for _, prog := range progs {
			ds[i] = append(ds[i], startBench(b, prog))
		}
	}
	walls := map[*benchDaemon][]float64{}
	cpus := map[*benchDaemon][]float64{}
	for r := range benchLoads(b) {
		for k := range crls {
			i := (r + k) % len(crls)
			for _, d := range ds[i] {
				w, c, err := d.load(b, root, crls[i].file)
				if err != nil && d.res.loadFailed == nil {
					d.res.loadFailed = err
				}
				walls[d], cpus[d] = append(walls[d], w), append(cpus[d], c)
			}
		}
	}
	for i := range crls {
		for _, d := range ds[i] {
			d.walls = walls[d]
			d.res.load = time.Duration(median(walls[d]) * float64(time.Second))
			d.res.loadCPU = time.Duration(median(cpus[d]) * float64(time.Second))
			d.res.rss = peakRSS(d.pid)
			d.res.cache = dirSize(filepath.Join(d.home, "crls.d"))
			d.cpus = cpus[d]
		}
	}
	return ds
}

func (d *benchDaemon) gnupg() bool { return strings.Contains(d.prog, "/usr/") }

// name is the daemon's column name.
func (d *benchDaemon) name() string {
	switch {
	case d.prog == "floor":
		return "floor"
	case d.gnupg():
		return "GnuPG"
	case d.prog == os.Getenv("BENCH_OURS_ALT"):
		return "alt"
	}
	return "ours"
}

// rate measures ISVALID/s through leanClient (benchclient_test.go) on
// conns connections, each on its own thread, for benchWindow; it
// returns the rate and the number of commands.
func (d *benchDaemon) rate(b *testing.B, conns int, root *testpki.Cert, reqs [][]byte) (float64, int64) {
	var n atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(benchWindow)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialLean(d.sock, root.DER())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.close()
			var done int64
			for i := w; done%64 != 0 || time.Now().Before(deadline); i += conns {
				r, err := c.transact(reqs[i%len(reqs)])
				if err != nil {
					b.Errorf("ISVALID: %v", err)
					return
				}
				if !bytes.Equal(r, []byte("OK")) && !bytes.HasPrefix(r, revoked) {
					b.Errorf("ISVALID %s: %s", reqs[i%len(reqs)], r)
					return
				}
				done++
			}
			n.Add(done)
		}()
	}
	wg.Wait()
	return float64(n.Load()) / benchWindow.Seconds(), n.Load()
}

// round runs one 1-connection and one 4-connection measurement.
// BENCH_PERF=<file> records our daemon with perf during its first
// 1-connection run, BENCH_STRACE=<file> counts its system calls.
func (d *benchDaemon) round(b *testing.B, first bool, root *testpki.Cert, reqs [][]byte) {
	stop := func() {}
	if first && d.name() == "ours" {
		stop = d.tracers()
	}
	cpu0 := cpuTime(d.pid)
	r, n := d.rate(b, 1, root, reqs)
	d.cpu1 += cpuTime(d.pid) - cpu0
	d.n1 += n
	stop()
	d.r1 = append(d.r1, r)
	r, _ = d.rate(b, 4, root, reqs)
	d.r4 = append(d.r4, r)
}

// tracers starts the perf and strace recordings asked for; the function
// returned ends them.
func (d *benchDaemon) tracers() func() {
	var stops []func()
	if out := os.Getenv("BENCH_PERF"); out != "" {
		perf := exec.Command("perf", "record", "-g", "-p", strconv.Itoa(d.pid), "-o", out)
		if err := perf.Start(); err == nil {
			stops = append(stops, func() { perf.Process.Signal(os.Interrupt); perf.Wait() })
		}
	}
	if out := os.Getenv("BENCH_STRACE"); out != "" {
		st := exec.Command("strace", "-c", "-f", "-p", strconv.Itoa(d.pid), "-o", out)
		if err := st.Start(); err == nil {
			stops = append(stops, func() { st.Process.Signal(os.Interrupt); st.Wait() })
		}
	}
	if len(stops) > 0 {
		time.Sleep(500 * time.Millisecond) // let them attach
	}
	return func() {
		for _, f := range stops {
			f()
		}
	}
}

// medians computes the rates and CPU per command over the rounds.
func (d *benchDaemon) medians() benchResult {
	d.res.rate1, d.res.rate4 = median(d.r1), median(d.r4)
	if d.n1 > 0 {
		d.res.cpuPerOp = d.cpu1 / time.Duration(d.n1)
	}
	return d.res
}

// busy returns our daemon's busy_us and requests (GETINFO stats).
func (d *benchDaemon) busy(b *testing.B) [2]int64 {
	out := strings.ReplaceAll(gca(b, d.home, "GETINFO stats"), "%0A", "\n")
	var r [2]int64
	for i, re := range []string{`busy_us (\d+)`, `requests (\d+)`} {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("GETINFO stats of %s: no %s in %q", d.name(), re, out)
		}
		r[i], _ = strconv.ParseInt(m[1], 10, 64)
	}
	return r
}

// finish computes the medians and stops the daemon.
func (d *benchDaemon) finish(b *testing.B) benchResult {
	gca(b, d.home, "KILLDIRMNGR")
	return d.medians()
}

// median returns the median of v (the mean of the middle two for even n).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// syncFile flushes a file to disk.
func syncFile(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatalf("sync %s: %v", path, err)
	}
}

// benchLoads returns BENCH_LOADS (default 5: single loads on this VM
// vary by ±20%, for every daemon; three loads of one 3M CRL by the same
// daemon took 0.70, 0.94 and 0.97 s in one run, and the same CRL loaded
// back to back into one cache, and into fresh ones, drifted from 0.56 to
// 0.79 s with no difference between the two, so the median of five is
// compared).
func benchLoads(b *testing.B) int { return positiveEnv(b, "BENCH_LOADS", 5) }

// positiveEnv returns the positive number in the environment variable
// name, or def when it is unset.
func positiveEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// benchRounds returns BENCH_ROUNDS (default 5: a round's 1-connection
// rate moves by ±15% with the VM's scheduling, for every daemon).
func benchRounds(b *testing.B) int { return positiveEnv(b, "BENCH_ROUNDS", 5) }

// BenchmarkCompareGnuPG loads big CRLs shaped like real CAs' (random
// 16/20-byte serials, see testpki.RealSerials) into our dirmngr and
// GnuPG's and prints ingest time, peak RSS, cache size / DER size and
// ISVALID rates side by side with ratios: 1M and 3M entries in revocation
// (random), sorted and reverse order; 10M too with BENCH_10M=1.
// BENCH_SIZES (e.g. "1000000") and BENCH_ORDERS (e.g. "random" or
// "sorted,random", run in that order) narrow it;
// BENCH_LOADS and BENCH_ROUNDS repeat the loads and the ISVALID rounds;
// BENCH_OURS_ALT adds another build of ours to the rounds; BENCH_REVOKED
// sets the share of revoked certificates among the checked (percent,
// default 50).
func BenchmarkCompareGnuPG(b *testing.B) {
	ours := buildPlain(b)
	theirs := requireTool(b, "dirmngr")
	sizes := []int{1_000_000, 3_000_000}
	if os.Getenv("BENCH_10M") == "1" {
		sizes = append(sizes, 10_000_000)
	}
	if v := os.Getenv("BENCH_SIZES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("BENCH_SIZES: %v", err)
			}
			sizes = append(sizes, n)
		}
	}
	all := []testpki.Order{testpki.RevocationOrder, testpki.SortedOrder, testpki.ReverseOrder}
	orders := all
	if v := os.Getenv("BENCH_ORDERS"); v != "" {
		// In the order given: what runs first runs after the
		// generator's work and the previous case's daemons.
		orders = nil
		for _, name := range strings.Split(v, ",") {
			o := slices.IndexFunc(all, func(o testpki.Order) bool { return o.String() == strings.TrimSpace(name) })
			if o < 0 {
				b.Fatalf("BENCH_ORDERS: unknown order %q (random, sorted, reverse)", name)
			}
			orders = append(orders, all[o])
		}
	}
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Bench Root CA", "Dirmngr Research", "DE")})
	hash, _ := certid.IssuerHash(root.Issue(testpki.Template{Subject: testpki.Name("x", "", "")}).Cert)
	for _, n := range sizes {
		// The CRLs of one size are made first: their loads are
		// interleaved (loadAll).
		dir, err := os.MkdirTemp("", "dmbench")
		if err != nil {
			b.Fatal(err)
		}
		// Removed after the size (the CRLs are large), and on a fatal
		// error before that.
		b.Cleanup(func() { os.RemoveAll(dir) })
		var crls []*benchCRL
		for _, order := range orders {
			crls = append(crls, makeBenchCRL(b, dir, root, hash, n, order))
		}
		progs := []string{ours, theirs}
		// BENCH_OURS_ALT=<dirmngr binary> runs another build of ours
		// beside them, in the same loads and rounds (an A/B of two
		// versions on the same machine state); it is reported, not
		// compared.
		if p := os.Getenv("BENCH_OURS_ALT"); p != "" {
			progs = append(progs, p)
		}
		ds := loadAll(b, progs, root, crls)
		for i, c := range crls {
			b.Run(fmt.Sprintf("entries=%d/order=%s", n, c.order), func(b *testing.B) {
				compareOne(b, ds[i], root, c)
			})
		}
		if len(crls) > 1 {
			b.Run(fmt.Sprintf("entries=%d/orders", n), func(b *testing.B) {
				compareOrders(b, ds, crls)
			})
		}
		os.RemoveAll(dir)
	}
}

// benchCRL is a CRL of the comparison and the ISVALID requests for it.
type benchCRL struct {
	n     int
	order testpki.Order
	file  string
	der   int64
	reqs  [][]byte
}

// makeBenchCRL writes a CRL of n entries in order into dir and makes 1000
// ISVALID requests, half of them (BENCH_REVOKED percent) for listed
// serials.
func makeBenchCRL(b *testing.B, dir string, root *testpki.Cert, hash string, n int, order testpki.Order) *benchCRL {
	t0 := time.Now().Add(-time.Duration(n+3600) * time.Second)
	set := testpki.RealSerials(n, 42, order)
	spec := &testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour), Count: n,
		Gen: func(i int) testpki.Entry { return set.Entry(i, t0) }}
	c := &benchCRL{n: n, order: order, file: testpki.WriteFile(dir, fmt.Sprintf("%d-%s.crl", n, order), spec.Build())}
	// The CRL just written is still being flushed to disk: the first
	// load (ours) would compete with that writeback (its own entry file
	// is synced), the second would not.
	syncFile(b, c.file)
	fi, err := os.Stat(c.file)
	if err != nil {
		b.Fatal(err)
	}
	c.der = fi.Size()
	// Half revoked, half valid; BENCH_REVOKED=<percent> changes the
	// share (real checks are mostly of certificates in good standing).
	pct := 50
	if v := os.Getenv("BENCH_REVOKED"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 100 {
			b.Fatalf("BENCH_REVOKED=%q: want a percentage, 0 to 100", v)
		}
		pct = p
	}
	for i := range 1000 {
		s := set.At(i * (n / 1000))
		if i%100 >= pct {
			s = set.Absent(i)
		}
		c.reqs = append(c.reqs, []byte(fmt.Sprintf("ISVALID %s.%X\n", hash, s)))
	}
	set = nil
	runtime.GC()
	return c
}

// compareOne runs the ISVALID rounds of one CRL on its daemons (ours,
// GnuPG's, and BENCH_OURS_ALT's if set; loaded by loadAll) and a floor
// server, stops them and prints the comparison.
func compareOne(b *testing.B, ds []*benchDaemon, root *testpki.Cert, crl *benchCRL) {
	n, order, reqs := crl.n, crl.order, crl.reqs
	for _, d := range ds {
		fmt.Printf("LOADCRL wall s per load (%s): %.2f, CPU s: %.2f\n", d.name(), d.walls, d.cpus)
	}
	for i, d := range ds[:2] {
		if d.res.loadFailed != nil {
			b.Fatalf("LOADCRL failed for %s: %v", []string{"ours", "GnuPG"}[i], d.res.loadFailed)
		}
	}
	// The daemons run side by side; the ISVALID rates alternate between
	// them, round after round, so that a slow stretch of the machine
	// hits all, and the medians are compared.
	floor := startFloor(b)
	all := append(slices.Clone(ds), floor)
	busy0 := map[*benchDaemon][2]int64{}
	for _, d := range all {
		if d.name() == "ours" || d.name() == "alt" {
			busy0[d] = d.busy(b)
		}
	}
	for range b.N {
		for i := range benchRounds(b) {
			for _, d := range all {
				d.round(b, i == 0, root, reqs)
			}
		}
	}
	// The time our daemons spent answering, per ISVALID (GETINFO stats):
	// the part of a round trip that is theirs, free of the machine's
	// scheduling noise that moves the rates.
	for _, d := range all {
		b0, ok := busy0[d]
		if !ok {
			continue
		}
		b1 := d.busy(b)
		if n := b1[1] - b0[1]; n > 0 {
			fmt.Printf("busy µs per ISVALID (%s): %.2f\n", d.name(), float64(b1[0]-b0[0])/float64(n))
		}
	}
	res := [2]benchResult{ds[0].finish(b), ds[1].finish(b)}
	fl := floor.medians()
	for _, d := range all {
		fmt.Printf("ISVALID/s per round (%s): 1 conn %.0f, 4 conns %.0f\n", d.name(), d.r1, d.r4)
	}
	if len(ds) > 2 {
		a := ds[2].finish(b)
		fmt.Printf("alt (%s): LOADCRL %.2fs, peak RSS %.2fMB, ISVALID/s %.0f on 1 conn, %.0f on 4 (ours: %.0f, %.0f)\n",
			ds[2].prog, a.load.Seconds(), float64(a.rss)/1e6, a.rate1, a.rate4, res[0].rate1, res[0].rate4)
	}
	o, g := res[0], res[1]
	der := float64(crl.der)
	fmt.Printf("\nCRL with %d entries in %s order (%.1f MB DER), %s\n", n, order, der/1e6, runtime.GOARCH)
	fmt.Printf("%-22s %14s %14s %10s\n", "metric", "ours", "GnuPG 2.2", "ratio")
	row := func(name string, a, b float64, unit string, higherBetter bool) {
		ratio := b / a
		if higherBetter {
			ratio = a / b
		}
		fmt.Printf("%-22s %12.2f%-2s %12.2f%-2s %9.2fx\n", name, a, unit, b, unit, ratio)
	}
	row("LOADCRL", o.load.Seconds(), g.load.Seconds(), "s", false)
	row("peak RSS", float64(o.rss)/1e6, float64(g.rss)/1e6, "MB", false)
	row("cache size", float64(o.cache)/1e6, float64(g.cache)/1e6, "MB", false)
	row("cache size / DER", float64(o.cache)/der, float64(g.cache)/der, "", false)
	row("ISVALID/s, 1 conn", o.rate1, g.rate1, "", true)
	row("ISVALID/s, 4 conns", o.rate4, g.rate4, "", true)
	// CPU the daemon spends (less sensitive to a loaded machine than rates).
	row("LOADCRL CPU", o.loadCPU.Seconds(), g.loadCPU.Seconds(), "s", false)
	row("CPU µs per ISVALID", float64(o.cpuPerOp.Nanoseconds())/1000, float64(g.cpuPerOp.Nanoseconds())/1000, "", false)
	fmt.Println("(ratio > 1: ours is better)")
	fmt.Printf("floor (assuan package answering OK, no work, floor_test.go): ISVALID/s %.0f on 1 conn (%.2fx GnuPG), %.0f on 4 (%.2fx GnuPG); ours is %.0f%% and %.0f%% of it\n",
		fl.rate1, fl.rate1/g.rate1, fl.rate4, fl.rate4/g.rate4, 100*o.rate1/fl.rate1, 100*o.rate4/fl.rate4)
	b.ReportMetric(o.load.Seconds(), "load-s")
	b.ReportMetric(float64(o.rss)/1e6, "rss-MB")
	b.ReportMetric(float64(o.cache)/der, "cache/DER")
	b.ReportMetric(o.rate1, "isvalid/s-1conn")
	b.ReportMetric(o.rate4, "isvalid/s-4conn")
	b.ReportMetric(g.load.Seconds()/o.load.Seconds(), "load-x-gnupg")
}

// compareOrders prints how much a CRL's entry order moved the loads of
// one size (loadAll interleaved them): the median load time and peak RSS
// per order for ours and GnuPG's, and the spread, the slowest order's
// value over the fastest's.
func compareOrders(b *testing.B, ds [][]*benchDaemon, crls []*benchCRL) {
	fmt.Printf("\nCRLs with %d entries: LOADCRL by order (median of %d loads, interleaved)\n", crls[0].n, benchLoads(b))
	fmt.Printf("%-8s %12s %12s %12s %12s\n", "order", "ours s", "ours RSS MB", "GnuPG s", "GnuPG RSS MB")
	var t, rss [2][]float64
	for i, crl := range crls {
		for j, d := range ds[i][:2] {
			t[j] = append(t[j], d.res.load.Seconds())
			rss[j] = append(rss[j], float64(d.res.rss)/1e6)
		}
		fmt.Printf("%-8s %12.2f %12.1f %12.2f %12.1f\n", crl.order, t[0][i], rss[0][i], t[1][i], rss[1][i])
	}
	spread := func(v []float64) float64 { return slices.Max(v) / slices.Min(v) }
	fmt.Printf("order spread (slowest / fastest): load ours %.2fx, GnuPG %.2fx; peak RSS ours %.2fx, GnuPG %.2fx\n",
		spread(t[0]), spread(t[1]), spread(rss[0]), spread(rss[1]))
	b.ReportMetric(spread(t[0]), "load-spread")
	b.ReportMetric(spread(rss[0]), "rss-spread")
}

// BenchmarkFetchCRLCompare runs our fetch-crl and Debian's Perl fetch-crl
// on 50 CAs with 10k-entry CRLs: a first run and a cached rerun, with
// parallelism 0 and 4, and prints the times side by side.
func BenchmarkFetchCRLCompare(b *testing.B) {
	dir := b.TempDir()
	oursBin := filepath.Join(dir, "fetch-crl")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", oursBin, "./cmd/fetch-crl")
	cmd.Dir = filepath.Dir(filepath.Dir(file))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	perl := requireTool(b, "fetch-crl")
	if os.Getenv("BENCH_FETCHCRL_OURS_ONLY") == "1" {
		perl = oursBin
	}
	l := newFCLabB(b)
	now := time.Now().Truncate(time.Second)
	for i := range 50 {
		name := fmt.Sprintf("PerfCA%02d", i+1)
		l.addCAB(name, fmt.Sprintf("alias = %s\ncrl_url = %s/%s.crl\n", name, l.base, name))
		l.serve("/"+name+".crl", l.crl(name, 1, now.Add(-time.Hour), now.Add(48*time.Hour), 10000))
	}
	type result struct{ first, cached time.Duration }
	run := func(prog, tag string, p int) result {
		out := filepath.Join(l.dir, tag, "out")
		state := filepath.Join(l.dir, tag, "state")
		os.RemoveAll(filepath.Join(l.dir, tag))
		os.MkdirAll(out, 0o755)
		os.MkdirAll(state, 0o755)
		conf := filepath.Join(l.dir, "empty.conf")
		os.WriteFile(conf, []byte("\n"), 0o644)
		confd := filepath.Join(l.dir, "confd")
		os.MkdirAll(confd, 0o755)
		var r result
		for k := range 2 {
			start := time.Now()
			c := exec.Command(prog, "-c", conf, "--cfgdir", confd, "-l", l.certs, "-o", out, "-s", state, "-p", strconv.Itoa(p))
			if o, err := c.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", prog, err, o)
			}
			if k == 0 {
				r.first = time.Since(start)
			} else {
				r.cached = time.Since(start)
			}
		}
		return r
	}
	for range b.N {
		fmt.Printf("\nfetch-crl: 50 CAs x 10000 entries\n%-24s %10s %12s %8s\n", "case", "ours", "Perl 3.0.22", "ratio")
		for _, p := range []int{0, 4} {
			o := run(oursBin, "ours", p)
			g := run(perl, "perl", p)
			fmt.Printf("%-24s %9.2fs %11.2fs %7.1fx\n", fmt.Sprintf("first run, -p %d", p), o.first.Seconds(), g.first.Seconds(), g.first.Seconds()/o.first.Seconds())
			fmt.Printf("%-24s %9.2fs %11.2fs %7.1fx\n", fmt.Sprintf("cached rerun, -p %d", p), o.cached.Seconds(), g.cached.Seconds(), g.cached.Seconds()/o.cached.Seconds())
			b.ReportMetric(o.first.Seconds(), fmt.Sprintf("first-p%d-s", p))
			b.ReportMetric(o.cached.Seconds(), fmt.Sprintf("cached-p%d-s", p))
		}
	}
}

// BenchmarkOCSPCompare measures ISVALID in OCSP mode (gpgsm --enable-ocsp)
// against a Go OCSP responder on loopback: cold (every certificate new,
// so every check needs the network) and repeated (the same certificate;
// ours answers from its OCSP cache, GnuPG's dirmngr has none).
func BenchmarkOCSPCompare(b *testing.B) {
	ours := buildPlain(b)
	theirs := requireTool(b, "dirmngr")
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("OCSP Bench CA", "", "")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<14))
		req, err := xocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", 400)
			return
		}
		now := time.Now()
		resp, err := xocsp.CreateResponse(ca.Cert, ca.Cert, xocsp.Response{Status: xocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour), Certificate: ca.Cert}, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	var certs []*testpki.Cert
	for i := range 3000 {
		certs = append(certs, ca.Issue(testpki.Template{Subject: testpki.Name(fmt.Sprintf("leaf %d", i), "", ""), KeyType: testpki.ECDSA, OCSPURLs: []string{url}}))
	}
	rate := func(prog string, cold bool) float64 {
		home := newHome(b)
		os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("allow-ocsp\n"), 0o600)
		startDaemon(b, prog, home)
		defer gca(b, home, "KILLDIRMNGR")
		c, err := assuan.Dial(filepath.Join(home, "S.dirmngr"))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		n := 0
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			cert := certs[0]
			if cold {
				cert = certs[n%len(certs)]
			}
			id, _ := certid.Of(cert.Cert)
			h := &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
				switch kw {
				case "SENDCERT":
					return cert.DER(), nil
				case "SENDISSUERCERT":
					return ca.DER(), nil
				case "ISTRUSTED":
					return []byte("1"), nil
				}
				return []byte{}, nil
			}}
			if err := c.Transact(context.Background(), "ISVALID "+id+" "+cert.Fingerprint(), h); err != nil {
				b.Fatalf("%s ISVALID: %v", prog, err)
			}
			n++
		}
		return float64(n) / 2
	}
	for range b.N {
		oc, gc := rate(ours, true), rate(theirs, true)
		ow, gw := rate(ours, false), rate(theirs, false)
		fmt.Printf("\nOCSP ISVALID (1 connection)\n%-26s %12s %12s %8s\n", "case", "ours/s", "GnuPG/s", "ratio")
		fmt.Printf("%-26s %12.0f %12.0f %7.1fx\n", "cold (network each time)", oc, gc, oc/gc)
		fmt.Printf("%-26s %12.0f %12.0f %7.1fx\n", "same certificate again", ow, gw, ow/gw)
		b.ReportMetric(oc, "ocsp-cold/s")
		b.ReportMetric(ow, "ocsp-cached/s")
	}
}
