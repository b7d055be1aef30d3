package mandoc

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/golden"

	"github.com/spf13/pflag"

	"github.com/dirmngr/dirmngr/cli/fetchcrlcmd"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/fetchcrl"
)

// manDate is fixed so that the generated pages are reproducible.
const manDate = PageDate

// TestGeneratedDocs keeps docs/dirmngr.8, docs/dirmngr-client.1 and
// dirmngr.conf.example equal to what the option tables generate
// (UPDATE_GOLDEN=1 rewrites them), so they cannot drift from --help.
func TestGeneratedDocs(t *testing.T) {
	for _, tc := range []struct {
		path string
		gen  []byte
	}{
		{"../../docs/dirmngr.8", DirmngrManPage(manDate)},
		{"../../docs/dirmngr-client.1", ClientManPage(manDate)},
		{"../../dirmngr.conf.example", ConfExample()},
	} {
		golden.Check(t, tc.path, tc.gen)
	}
}

// TestConfExampleParses uncomments every option line of
// dirmngr.conf.example and loads it with the real parser.
func TestConfExampleParses(t *testing.T) {
	data, err := os.ReadFile("../../dirmngr.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		opt, ok := strings.CutPrefix(line, "#")
		if !ok || opt == "" || opt[0] == ' ' || opt[0] == '#' {
			continue
		}
		name, arg, _ := strings.Cut(opt, " ")
		if placeholderRE.MatchString(arg) {
			arg = placeholder(name, arg)
		}
		conf.WriteString(name + " " + arg + "\n")
		n++
	}
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte(conf.String()), 0o600)
	l, err := config.Load([]string{"--homedir", home})
	if err != nil {
		t.Fatalf("example does not parse: %v\n%s", err, conf.String())
	}
	if len(l.Warnings) > 0 {
		t.Errorf("warnings: %q", l.Warnings)
	}
	if n < 40 {
		t.Errorf("only %d options in the example", n)
	}
}

var placeholderRE = regexp.MustCompile(`^[A-Z][A-Z|]*$`)

// placeholder gives a valid value for an argument name of the example.
func placeholder(name, arg string) string {
	switch {
	case name == "ldapserver" || arg == "SPEC":
		return "ldap.example.org:389:::dc=example,dc=org"
	case name == "debug":
		return "0"
	case arg == "FILE":
		return "/dev/null"
	case arg == "URL":
		return "http://proxy.example.org:8080"
	case arg == "EPOCH":
		return "20261125T000000"
	case arg == "FPR" || arg == "FPR|FILE":
		return "56D0180A0422C6906506E4C6A1F2D40807C58882"
	case arg == "OID":
		return "1.2.3.4"
	case arg == "IP" || arg == "HOST":
		return "127.0.0.1"
	}
	return "x"
}

// TestFetchCRLManPageCoversFlags: the hand-written fetch-crl(8) documents
// every flag the command accepts, and the --help text lists them too.
func TestFetchCRLManPageCoversFlags(t *testing.T) {
	page, err := os.ReadFile("../../docs/fetch-crl.8")
	if err != nil {
		t.Fatal(err)
	}
	cmd := fetchcrlcmd.NewCommand()
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		roff := `\-\-` + strings.ReplaceAll(f.Name, "-", `\-`)
		if !strings.Contains(string(page), roff) {
			t.Errorf("fetch-crl(8) does not document --%s", f.Name)
		}
		if !strings.Contains(fetchcrlcmd.Help, "--"+f.Name) {
			t.Errorf("fetch-crl --help does not list --%s", f.Name)
		}
	})
}

// TestHiddenOptionsDocumented: every option that --help hides but
// dirmngr.conf accepts has its own text in the man page and the example
// (none is dismissed as "accepted for compatibility"), and the man page
// prints each default once.
func TestHiddenOptionsDocumented(t *testing.T) {
	o := config.Defaults()
	for _, d := range o.Defs() {
		if d.Help == "" && !d.Command && !d.NoConf && HiddenDocs[d.Name] == "" {
			t.Errorf("option --%s is hidden from --help but has no HiddenDocs entry", d.Name)
		}
	}
	page := string(DirmngrManPage(manDate))
	for _, line := range strings.Split(page, "\n") {
		if strings.Count(line, "default") > 1 {
			t.Errorf("default given twice: %q", line)
		}
	}
	for _, want := range []string{`\-\-homedir`, `\-\-system`, "HOMEDIR AND SYSTEM MODE", `\-\-faked\-system\-time`} {
		if !strings.Contains(page, want) {
			t.Errorf("dirmngr(8) lacks %q", want)
		}
	}
	if ex := string(ConfExample()); strings.Contains(ex, "accepted for compatibility") {
		t.Error("dirmngr.conf.example still calls options \"accepted for compatibility\"")
	}
}

// TestInstalledNames: the pages the package installs carry the installed
// program names in their title, NAME, SYNOPSIS and cross references.
func TestInstalledNames(t *testing.T) {
	n := InstalledNames
	src, err := os.ReadFile("../../docs/fetch-crl.8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		page string
		want []string
	}{
		{string(DirmngrManPageFor(manDate, n)), []string{".TH DIRMNGR\\-GO 8", "dirmngr\\-go \\- CRL", ".B dirmngr\\-go\n", "dirmngr\\-go \\-\\-daemon", ".BR dirmngr\\-client\\-go (1)", ".BR fetch\\-crl\\-go (8)", "/usr/bin/dirmngr\\-go"}},
		{string(ClientManPageFor(manDate, n)), []string{".TH DIRMNGR\\-CLIENT\\-GO 1", "dirmngr\\-client\\-go \\- ", ".B dirmngr\\-client\\-go\n", ".BR dirmngr\\-go (8)"}},
		{string(FetchCRLManPageFor(src, n)), []string{".TH FETCH\\-CRL\\-GO 8", "fetch\\-crl\\-go \\- retrieve", ".B fetch\\-crl\\-go\n", ".BR dirmngr\\-go (8),"}},
	} {
		for _, w := range tc.want {
			if !strings.Contains(tc.page, w) {
				t.Errorf("installed page lacks %q:\n%.400s", w, tc.page)
			}
		}
	}
}

// TestReadmeAndOperations keeps the hand-written docs honest: the README
// names the Go version go.mod needs and how long `make test` takes, points
// at nothing a clone lacks, and has no stale "not yet" for what exists;
// docs/operations.md warns that the OpenPGP side is not served and names
// the configuration files fetch-crl-go really reads.
func TestReadmeAndOperations(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme, ops, gomod := read("../../README.md"), read("../../docs/operations.md"), read("../../go.mod")
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if goVersion == nil || !strings.Contains(readme, "Go "+goVersion[1]) {
		t.Errorf("README does not name go.mod's Go version %v", goVersion)
	}
	for _, bad := range []string{"../shared", "See `issues`", "Not yet: system-wide mode"} {
		if strings.Contains(readme, bad) {
			t.Errorf("README still says %q", bad)
		}
	}
	if !regexp.MustCompile("`make test` takes about\\s+[0-9]").MatchString(readme) {
		t.Error("README does not say how long `make test` takes")
	}
	unit := read("../../packaging/systemd/fetch-crl-go.service")
	for _, want := range []string{"OpenPGP side", "KS_GET", "WKD", "/etc/fetch-crl.conf", "-c /etc/fetch-crl-go.conf", "fetch-crl.timer", "/etc/cron.d/fetch-crl"} {
		if !strings.Contains(ops, want) {
			t.Errorf("docs/operations.md lacks %q", want)
		}
	}
	if !strings.Contains(unit, "-c /etc/fetch-crl-go.conf") {
		t.Error("fetch-crl-go.service no longer passes -c /etc/fetch-crl-go.conf; fix docs/operations.md")
	}
	for _, f := range fetchcrl.DefaultConfigFiles {
		if !strings.Contains(ops, f) {
			t.Errorf("docs/operations.md does not name fetch-crl's default configuration %s", f)
		}
	}
}
