package integration

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestReloadStorm: 100 SIGHUPs and 100 RELOADDIRMNGRs (each re-reading a
// changed configuration and the certificate directories) while 20 clients
// run ISVALID and CHECKCRL: every answer is right and none is an error. Run under -race (the daemon is built with
// it): a session sees the old or the new services for a whole command.
func TestReloadStorm(t *testing.T) {
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Storm Root", "", ""), KeyType: testpki.ECDSA})
	der := (&testpki.CRLSpec{Issuer: root, NextUpdate: time.Now().Add(time.Hour), Entries: []testpki.Entry{{Serial: big.NewInt(0x2002), Reason: 1, Time: time.Now().Add(-time.Hour)}}}).Build()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(der) }))
	defer srv.Close()
	crlURL := srv.URL + "/storm.crl"
	good := root.Issue(testpki.Template{Subject: testpki.Name("good", "", ""), Serial: big.NewInt(0x1001), KeyType: testpki.ECDSA, CRLURLs: []string{crlURL}})
	bad := root.Issue(testpki.Template{Subject: testpki.Name("bad", "", ""), Serial: big.NewInt(0x2002), KeyType: testpki.ECDSA, CRLURLs: []string{crlURL}})
	home := newHome(t)
	// A data race in the daemon ends it at once and leaves a report.
	raceLog := filepath.Join(t.TempDir(), "race")
	t.Setenv("GORACE", "halt_on_error=1 log_path="+raceLog)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	os.WriteFile(filepath.Join(home, "trusted-certs", "root.pem"), root.PEM(), 0o600)
	conf := filepath.Join(home, "dirmngr.conf")
	// The daemon logs to a file (kept across the reloads) shown when the
	// test fails, so that a wrong answer can be traced.
	logFile := filepath.Join(t.TempDir(), "dirmngr.log")
	os.WriteFile(conf, fmt.Appendf(nil, "log-file %s\nmax-replies 5\n", logFile), 0o600)
	defer func() {
		if t.Failed() {
			// Without the expected answers (a revoked certificate is
			// logged as a failed command).
			data, _ := os.ReadFile(logFile)
			var keep []string
			for _, l := range strings.Split(string(data), "\n") {
				if !strings.Contains(l, "failed: Certificate revoked") {
					keep = append(keep, l)
				}
			}
			t.Logf("daemon log:\n%s", strings.Join(keep, "\n"))
		}
	}()
	pid := startDaemon(t, bin(t, "dirmngr"), home)
	sock := filepath.Join(home, "S.dirmngr")

	var done atomic.Bool
	var checks, wrong atomic.Int64
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stormClient(t, sock, w, root, good, bad, &done, &checks, &wrong)
		}()
	}
	// Each reload waits for a check to complete after the previous one, so
	// reloads and checks interleave however slow the machine is.
	var interleaved atomic.Int64
	reloader := func(n int, reload func(i int)) {
		for i := range n {
			last := checks.Load()
			for checks.Load() == last && wrong.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			os.WriteFile(conf, fmt.Appendf(nil, "log-file %s\nmax-replies %d\nidle-timeout %d\n", logFile, 5+i%3, 3000+i), 0o600)
			reload(i)
			interleaved.Add(1)
		}
	}
	var reloads sync.WaitGroup
	reloads.Add(2)
	go func() {
		defer reloads.Done()
		reloader(100, func(int) { syscall.Kill(pid, syscall.SIGHUP) })
	}()
	go func() {
		defer reloads.Done()
		c, err := assuan.Dial(sock)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		reloader(100, func(i int) {
			if err := c.Transact(context.Background(), "RELOADDIRMNGR", &assuan.Handlers{}); err != nil {
				t.Errorf("RELOADDIRMNGR %d: %v", i, err)
			}
		})
	}()
	reloads.Wait()
	done.Store(true)
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d wrong answers", n)
	}
	if n := interleaved.Load(); n != 200 && wrong.Load() == 0 {
		t.Errorf("%d reloads between checks, want 200", n)
	}
	t.Logf("%d checks during 200 reloads", checks.Load())
	if !alive(pid) {
		t.Error("daemon died")
	}
	if reports, _ := filepath.Glob(raceLog + "*"); len(reports) > 0 {
		data, _ := os.ReadFile(reports[0])
		t.Fatalf("data race in the daemon:\n%s", data)
	}
}

// stormClient runs checks until done; every error or unexpected answer is
// reported and counted.
func stormClient(t *testing.T, sock string, w int, root, good, bad *testpki.Cert, done *atomic.Bool, checks, wrong *atomic.Int64) {
	var c *assuan.Client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	var target *testpki.Cert
	h := &assuan.Handlers{Inquire: func(kw, args string) ([]byte, error) {
		switch {
		case kw == "ISTRUSTED":
			return []byte("1"), nil
		case kw == "SENDCERT" && args == "", kw == "TARGETCERT":
			return target.DER(), nil
		case kw == "SENDCERT", kw == "SENDCERT_SKI":
			return root.DER(), nil
		}
		return []byte{}, nil
	}}
	for i := 0; !done.Load(); i++ {
		if i%20 == 0 { // new sessions too, not only new commands
			if c != nil {
				c.Close()
			}
			var err error
			if c, err = assuan.Dial(sock); err != nil {
				wrong.Add(1)
				t.Errorf("client %d: %v", w, err)
				return
			}
		}
		target = good
		if (i+w)%2 == 1 {
			target = bad
		}
		line := "CHECKCRL"
		if i%2 == 0 {
			line = "ISVALID " + certID(t, target)
		}
		err := c.Transact(context.Background(), line, h)
		checks.Add(1)
		want := gpgerr.Code(0)
		if target == bad {
			want = gpgerr.ErrCertRevoked
		}
		if got := gpgerr.CodeOf(err); got != want && !(err == nil && want == 0) {
			wrong.Add(1)
			t.Errorf("client %d (check %d): %s for %s: %v (%#v), want %v", w, i, line, target.Cert.Subject.CommonName, err, err, want)
			return
		}
	}
}
