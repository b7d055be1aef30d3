package integration

import (
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// installedStatus is dpkg's record of an installed dirmngr-go ("" when
// none is installed), to show that the test leaves it alone.
func installedStatus() string {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status} ${Version}", "dirmngr-go").Output()
	return string(out)
}

// TestDebPackage builds the .deb with `make deb` and checks it without
// installing it over the machine: the package is unpacked into a scratch
// root, its metadata and files are checked, its units are verified with
// `systemd-analyze verify --root`, its man pages rendered, its binaries
// run from the scratch root (the daemon socket-activated) and its postrm
// run on the scratch root ($DPKG_ROOT). An installed dirmngr-go, with its
// conffiles, is never touched.
func TestDebPackage(t *testing.T) {
	dpkgDeb := requireTool(t, "dpkg-deb")
	analyze := requireTool(t, "systemd-analyze")
	activate := requireTool(t, "systemd-socket-activate")
	requireTool(t, "man")
	before := installedStatus()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Dir(filepath.Dir(file))
	cmd := exec.Command("make", "deb")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(src, "build", "dirmngr-go_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("debs: %v", debs)
	}
	deb := debs[0]
	root := t.TempDir()
	for _, args := range [][]string{{"-x", deb, root}, {"-e", deb, filepath.Join(root, "DEBIAN")}} {
		if out, err := exec.Command(dpkgDeb, args...).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
		}
	}
	checkDebMetadata(t, dpkgDeb, deb, src)
	want := []string{"/usr/bin/dirmngr-go", "/usr/bin/dirmngr-client-go", "/usr/sbin/fetch-crl-go",
		"/usr/share/man/man8/dirmngr-go.8.gz", "/usr/share/man/man1/dirmngr-client-go.1.gz", "/usr/share/man/man8/fetch-crl-go.8.gz",
		"/usr/lib/systemd/user/dirmngr-go.socket", "/usr/lib/systemd/user/dirmngr-go.service",
		"/usr/lib/systemd/system/dirmngr-go-system.socket", "/usr/lib/systemd/system/dirmngr-go-system.service",
		"/usr/lib/systemd/system/fetch-crl-go.service", "/usr/lib/systemd/system/fetch-crl-go.timer",
		"/usr/share/doc/dirmngr-go/dirmngr.conf.example", "/usr/share/doc/dirmngr-go/copyright",
		"/etc/fetch-crl-go.conf", "/DEBIAN/postrm"}
	for _, w := range want {
		if _, err := os.Stat(filepath.Join(root, w)); err != nil {
			t.Errorf("package lacks %s", w)
		}
	}
	for _, b := range []string{"/usr/bin/dirmngr-go", "/usr/bin/dirmngr-client-go", "/usr/sbin/fetch-crl-go"} {
		if f, err := elf.Open(filepath.Join(root, b)); err != nil {
			t.Errorf("%s: %v", b, err)
		} else {
			if f.Section(".symtab") != nil {
				t.Errorf("%s is not stripped", b)
			}
			f.Close()
		}
	}
	verifyUnits(t, analyze, root)
	checkManPages(t, root)

	if out, err := exec.Command(filepath.Join(root, "usr/bin/dirmngr-go"), "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "2.2.40") {
		t.Errorf("unpacked dirmngr-go --version: %v %s", err, out)
	}
	// The unpacked daemon, socket-activated as the user unit runs it.
	home := newHome(t)
	sock := filepath.Join(home, "S.dirmngr")
	sa := exec.Command(activate, "-l", sock, "-E", "GNUPGHOME="+home,
		filepath.Join(root, "usr/bin/dirmngr-go"), "--supervised")
	saLog, err := os.Create(filepath.Join(home, "activate.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer saLog.Close()
	sa.Stderr = saLog
	if err := sa.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sa.Process.Kill(); sa.Wait() }()
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }, "activation socket")
	if out := gcaSocket(t, sock, "GETINFO version", "/bye"); !strings.Contains(out, "D 2.2.40") {
		log, _ := os.ReadFile(saLog.Name())
		t.Errorf("socket-activated daemon: %q\nsystemd-socket-activate and daemon: %s", out, log)
	}
	gcaSocket(t, sock, "KILLDIRMNGR", "/bye")

	checkPostrm(t, root)
	if after := installedStatus(); after != before {
		t.Errorf("the installed dirmngr-go changed: %q before, %q after", before, after)
	}
}

// checkDebMetadata checks the control fields and the licence files.
func checkDebMetadata(t *testing.T, dpkgDeb, deb, src string) {
	t.Helper()
	field := func(name string) string {
		out, err := exec.Command(dpkgDeb, "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, f := range []string{"Maintainer", "Homepage"} {
		v := field(f)
		if v == "" || strings.Contains(v, "example") || strings.Contains(v, "invalid") {
			t.Errorf("%s is a placeholder: %q", f, v)
		}
	}
	if h := field("Homepage"); h != "https://github.com/dirmngr/dirmngr" {
		t.Errorf("Homepage %q is not the module's repository", h)
	}
	desc := strings.Split(field("Description"), "\n")
	synopsis := desc[0]
	if len(synopsis) > 80 || strings.HasSuffix(synopsis, ".") {
		t.Errorf("synopsis %q: at most 80 characters, no final period", synopsis)
	}
	last := strings.TrimSpace(desc[len(desc)-1])
	for _, w := range []string{" and", " with", " for", ","} {
		if strings.HasSuffix(synopsis, w) {
			t.Errorf("synopsis cut mid-sentence: %q", synopsis)
		}
	}
	if !strings.HasSuffix(last, ".") && !strings.HasSuffix(last, `".`) {
		t.Errorf("long description ends mid-sentence: %q", last)
	}
	lic, err := os.ReadFile(filepath.Join(src, "LICENSE"))
	if err != nil || !strings.Contains(string(lic), "GNU GENERAL PUBLIC LICENSE") || !strings.Contains(string(lic), "Version 3, 29 June 2007") {
		t.Errorf("LICENSE is not the GPL version 3 the package declares: %v", err)
	}
	nfpm, _ := os.ReadFile(filepath.Join(src, "packaging", "nfpm.yaml"))
	if !strings.Contains(string(nfpm), "license: GPL-3.0-or-later") {
		t.Error("nfpm.yaml does not declare GPL-3.0-or-later")
	}
}

// verifyUnits runs systemd-analyze verify on the unpacked units in a
// scratch root that also holds the host's units (sysinit.target & co.).
// systemd cannot verify user units under --root, so the user units are
// verified by the system manager from a copy in the root's /run.
func verifyUnits(t *testing.T, analyze, root string) {
	t.Helper()
	for _, dir := range []string{"/usr/lib/systemd/system", "/usr/lib/systemd/user"} {
		copyTree(t, dir, filepath.Join(root, dir))
	}
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	os.Symlink("usr/lib", filepath.Join(root, "lib"))
	// ExecReload= runs /bin/kill (procps), which verify wants to find.
	copyFile(t, requireTool(t, "kill"), filepath.Join(root, "usr/bin/kill"), 0o755)
	run := filepath.Join(root, "run/systemd/system")
	os.MkdirAll(run, 0o755)
	for _, u := range []string{"dirmngr-go.service", "dirmngr-go.socket"} {
		copyFile(t, filepath.Join(root, "usr/lib/systemd/user", u), filepath.Join(run, u), 0o644)
	}
	units := []string{"/usr/lib/systemd/system/dirmngr-go-system.socket", "/usr/lib/systemd/system/dirmngr-go-system.service",
		"/usr/lib/systemd/system/fetch-crl-go.service", "/usr/lib/systemd/system/fetch-crl-go.timer",
		"/run/systemd/system/dirmngr-go.service", "/run/systemd/system/dirmngr-go.socket"}
	// Man pages are checked separately (man -l) on the unpacked files.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no", "--root=" + root}, units...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify --root: %v\n%s", err, out)
	}
	for _, u := range units {
		data, _ := os.ReadFile(filepath.Join(root, u))
		if strings.Contains(u, "fetch-crl-go") && !strings.Contains(string(data), "Conflicts=fetch-crl.") {
			t.Errorf("%s does not conflict with Debian's fetch-crl unit", u)
		}
	}
}

// checkManPages renders the unpacked pages and checks their names.
func checkManPages(t *testing.T, root string) {
	t.Helper()
	for m, name := range map[string]string{"/usr/share/man/man8/dirmngr-go.8.gz": "dirmngr-go - CRL",
		"/usr/share/man/man1/dirmngr-client-go.1.gz": "dirmngr-client-go - ", "/usr/share/man/man8/fetch-crl-go.8.gz": "fetch-crl-go - retrieve"} {
		c := exec.Command("man", "-l", filepath.Join(root, m))
		c.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat", "LC_ALL=C")
		raw, err := c.CombinedOutput()
		out := strings.Join(strings.Fields(string(raw)), " ")
		if err != nil || !strings.Contains(out, "NAME") || !strings.Contains(out, name) {
			t.Errorf("man -l %s: %v (want %q)\n%.300s", m, err, name, out)
		}
	}
}

// checkPostrm runs the package's postrm on the scratch root: purge removes
// the system-mode directories, nothing else; remove keeps them.
func checkPostrm(t *testing.T, root string) {
	t.Helper()
	dirs := []string{"etc/dirmngr", "var/lib/private/dirmngr", "var/cache/private/dirmngr", "var/cache/dirmngr"}
	keep := filepath.Join(root, "var/cache/fetch-crl/state")
	for _, d := range append(dirs, "var/cache/fetch-crl") {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc/dirmngr/dirmngr.conf"), []byte("verbose\n"), 0o644)
	os.WriteFile(keep, nil, 0o644)
	postrm := filepath.Join(root, "DEBIAN/postrm")
	for _, arg := range []string{"remove", "purge"} {
		c := exec.Command(postrm, arg)
		c.Env = append(os.Environ(), "DPKG_ROOT="+root)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("postrm %s: %v\n%s", arg, err, out)
		}
		for _, d := range dirs {
			_, err := os.Stat(filepath.Join(root, d))
			if arg == "remove" && err != nil {
				t.Errorf("postrm remove deleted %s", d)
			}
			if arg == "purge" && err == nil {
				t.Errorf("postrm purge left %s", d)
			}
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("postrm purge removed fetch-crl's state: %v", err)
	}
}

// copyTree copies the regular files and symlinks of dir into dst, keeping
// what dst already has.
func copyTree(t *testing.T, dir, dst string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, dir))
		if _, err := os.Lstat(target); err == nil {
			return nil
		}
		switch {
		case d.IsDir():
			os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			if l, err := os.Readlink(p); err == nil {
				os.Symlink(l, target)
			}
		case d.Type().IsRegular():
			copyFile(t, p, target, 0o644)
		}
		return nil
	})
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}
