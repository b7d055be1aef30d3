package integration

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func fileSum(t *testing.T, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	return sha256.Sum256(b)
}

// TestDebPackage builds the .deb with `make deb`, checks its contents,
// installs it next to Debian's dirmngr, gpgsm and fetch-crl with dpkg,
// verifies the installed units and man pages, runs the socket-activated
// daemon, and removes it again leaving GnuPG's files untouched.
func TestDebPackage(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the package test needs root in CI")
		}
		t.Skip("needs root for dpkg -i")
	}
	dpkg := requireTool(t, "dpkg")
	requireTool(t, "dpkg-deb")
	analyze := requireTool(t, "systemd-analyze")
	activate := requireTool(t, "systemd-socket-activate")
	requireTool(t, "man")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("make", "deb")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "build", "dirmngr-go_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("debs: %v", debs)
	}
	contents, err := exec.Command("dpkg-deb", "-c", debs[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"./usr/bin/dirmngr-go", "./usr/bin/dirmngr-client-go", "./usr/sbin/fetch-crl-go",
		"./usr/share/man/man8/dirmngr-go.8.gz", "./usr/share/man/man1/dirmngr-client-go.1.gz", "./usr/share/man/man8/fetch-crl-go.8.gz",
		"./usr/lib/systemd/user/dirmngr-go.socket", "./usr/lib/systemd/user/dirmngr-go.service",
		"./usr/lib/systemd/system/fetch-crl-go.timer", "./usr/share/doc/dirmngr-go/dirmngr.conf.example", "./etc/fetch-crl-go.conf"}
	for _, w := range want {
		if !strings.Contains(string(contents), w+"\n") {
			t.Errorf("package lacks %s", w)
		}
	}
	// GnuPG's and Debian fetch-crl's files must survive install and removal.
	theirs := []string{"/usr/bin/dirmngr", "/usr/bin/gpgsm", "/usr/bin/dirmngr-client", "/usr/sbin/fetch-crl"}
	sums := map[string][32]byte{}
	for _, p := range theirs {
		sums[p] = fileSum(t, p)
	}
	t.Cleanup(func() { exec.Command(dpkg, "-P", "dirmngr-go").Run() })
	if out, err := exec.Command(dpkg, "-i", debs[0]).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if out, err := exec.Command("/usr/bin/dirmngr-go", "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "2.2.40") {
		t.Errorf("installed dirmngr-go --version: %v %s", err, out)
	}
	units := []string{"/usr/lib/systemd/user/dirmngr-go.socket", "/usr/lib/systemd/user/dirmngr-go.service",
		"/usr/lib/systemd/system/fetch-crl-go.service", "/usr/lib/systemd/system/fetch-crl-go.timer",
		"/usr/lib/systemd/system/dirmngr-go-system.socket", "/usr/lib/systemd/system/dirmngr-go-system.service"}
	if out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, m := range []string{"/usr/share/man/man8/dirmngr-go.8.gz", "/usr/share/man/man1/dirmngr-client-go.1.gz", "/usr/share/man/man8/fetch-crl-go.8.gz"} {
		c := exec.Command("man", "-l", m)
		c.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		if out, err := c.CombinedOutput(); err != nil || !strings.Contains(string(out), "NAME") {
			t.Errorf("man -l %s: %v\n%.300s", m, err, out)
		}
	}
	// The installed daemon, socket-activated, answers gpg-connect-agent.
	home := newHome(t)
	sa := exec.Command(activate, "-l", filepath.Join(home, "S.dirmngr"), "/usr/bin/dirmngr-go", "--supervised", "--homedir", home)
	if err := sa.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sa.Process.Kill(); sa.Wait() }()
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "S.dirmngr")); return err == nil }, "activation socket")
	if out := gca(t, home, "GETINFO version"); !strings.Contains(out, "D 2.2.40") {
		t.Errorf("socket-activated daemon: %q", out)
	}
	gca(t, home, "KILLDIRMNGR")

	if out, err := exec.Command(dpkg, "-P", "dirmngr-go").CombinedOutput(); err != nil {
		t.Fatalf("dpkg -P: %v\n%s", err, out)
	}
	for _, p := range append(units, "/usr/bin/dirmngr-go", "/etc/fetch-crl-go.conf") {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
	for _, p := range theirs {
		if fileSum(t, p) != sums[p] {
			t.Errorf("%s changed by installing our package", p)
		}
	}
}
