package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestFetchCRLDirmngrFeed: fetch-crl --dirmngr loads each new CRL into our
// running daemon. The daemon trusts only the root; the CRL is signed by
// an intermediate CA that only fetch-crl has (in its cadir, as IGTF
// anchors are), so fetch-crl must hand it over (CACHECERT). With a
// relative and an absolute output directory, LISTCRLS names the installed
// file, which exists.
func TestFetchCRLDirmngrFeed(t *testing.T) {
	ours := bin(t, "fetch-crl")
	daemon := bin(t, "dirmngr")
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Feed Root", "Test", "NL"), KeyType: testpki.RSA})
	sub := root.Issue(testpki.Template{Subject: testpki.Name("Feed Sub CA", "Test", "NL"), IsCA: true, KeyType: testpki.ECDSA})
	l.cas["FeedSub"] = sub
	testpki.WriteFile(l.certs, "FeedSub.pem", sub.PEM())
	testpki.WriteFile(l.certs, "FeedSub.info", []byte(fmt.Sprintf("alias = FeedSub\ncrl_url = %s/feed.crl\n", l.base)))
	hash, _ := certid.SubjectHash(sub.Cert.RawSubject)

	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", root.DER())
	startDaemon(t, daemon, home)
	t.Cleanup(func() { gca(t, home, "KILLDIRMNGR") })
	sock := filepath.Join(home, "S.dirmngr")

	cases := []struct {
		name, output string // output as given to -o (relative to the lab directory)
	}{
		{"relative", "relout"},
		{"absolute", filepath.Join(l.dir, "absout")},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			number := int64(10 + i)
			l.serve("/feed.crl", l.crl("FeedSub", number, now.Add(time.Duration(i-60)*time.Minute), now.Add(48*time.Hour), 3))
			state := filepath.Join(l.dir, c.name+"-state")
			os.MkdirAll(state, 0o755)
			os.MkdirAll(filepath.Join(l.dir, "relout"), 0o755)
			os.MkdirAll(filepath.Join(l.dir, "absout"), 0o755)
			cmd := exec.Command(ours, "-c", "/dev/null", "--cfgdir", filepath.Join(l.dir, "none"), "-l", l.certs,
				"-o", c.output, "-s", state, "--dirmngr", sock, "-v", "-v")
			cmd.Dir = l.dir
			cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC", "http_proxy=", "HTTP_PROXY=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("fetch-crl: %v\n%s", err, out.String())
			}
			if strings.Contains(out.String(), "WARN") || !strings.Contains(out.String(), "CRL of FeedSub loaded into dirmngr") {
				t.Fatalf("dirmngr not fed:\n%s", out.String())
			}
			dir := c.output
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(l.dir, dir)
			}
			installed := filepath.Join(dir, hash+".r0")
			list := gca(t, home, "LISTCRLS")
			src := regexp.MustCompile(`Begin CRL dump \(retrieved via ([^)]*)\)`).FindStringSubmatch(list)
			if src == nil || src[1] != installed {
				t.Fatalf("LISTCRLS source %q, want %s:\n%s", src, installed, list)
			}
			if _, err := os.Stat(src[1]); err != nil {
				t.Errorf("listed source: %v", err)
			}
			if !strings.Contains(list, "CN=Feed Sub CA,O=Test,C=NL") || !strings.Contains(list, fmt.Sprintf("CRL Number :\t%02X", number)) {
				t.Errorf("daemon lacks CRL %d:\n%s", number, list)
			}
		})
	}
}
