package config

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty", "", nil},
		{"comments and blanks", "# comment\n\n   # indented comment\n", nil},
		{"flag", "allow-ocsp\n", []Entry{{"allow-ocsp", "", 1}}},
		{"value", "ldaptimeout 30\n", []Entry{{"ldaptimeout", "30", 1}}},
		{"tab and trailing blanks", "log-file\t/tmp/x.log  \n", []Entry{{"log-file", "/tmp/x.log", 1}}},
		{"quoted", "ocsp-responder \"http://a b/\"\n", []Entry{{"ocsp-responder", "http://a b/", 1}}},
		{"dashes tolerated", "--verbose\n", []Entry{{"verbose", "", 1}}},
		{"line numbers", "\n#x\nforce\n", []Entry{{"force", "", 3}}},
		{"crlf", "max-replies 5\r\n", []Entry{{"max-replies", "5", 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFile(strings.NewReader(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestParseFileLineTooLong(t *testing.T) {
	_, err := ParseFile(strings.NewReader("keyserver " + strings.Repeat("x", MaxConfigLine+10) + "\n"))
	if err == nil {
		t.Fatal("an over-long line must be an error")
	}
}

func writeConf(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "dirmngr.conf"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	home := t.TempDir()
	writeConf(t, home, "ldaptimeout 30\nmax-replies 7\nallow-ocsp\nno-such-option 1\nserver\nverbose\nverbose\n")
	l, err := Load([]string{"--homedir", home, "--max-replies", "3", "--server"})
	if err != nil {
		t.Fatal(err)
	}
	o := l.Opts
	if o.LDAPTimeout != 30 || o.MaxReplies != 3 || !o.AllowOCSP || !o.Server || o.Verbose != 2 {
		t.Fatalf("unexpected options: ldaptimeout=%d max-replies=%d allow-ocsp=%v server=%v verbose=%d",
			o.LDAPTimeout, o.MaxReplies, o.AllowOCSP, o.Server, o.Verbose)
	}
	if !l.ConfigRead || l.ConfigFile != filepath.Join(home, "dirmngr.conf") || l.Homedir != home {
		t.Fatalf("config file %q read=%v homedir %q", l.ConfigFile, l.ConfigRead, l.Homedir)
	}
	if len(l.Warnings) != 2 || !strings.Contains(l.Warnings[0], "no-such-option") || !strings.Contains(l.Warnings[1], "'server' is not allowed") {
		t.Fatalf("warnings: %q", l.Warnings)
	}
}

func TestLoadErrors(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name string
		conf string
		args []string
		want string
	}{
		{"unknown option on the command line", "", []string{"--no-such-option"}, "invalid option \"--no-such-option\""},
		{"missing explicit options file", "", []string{"--options", filepath.Join(home, "nope.conf")}, "nope.conf"},
		{"bad number in file", "max-replies many\n", nil, "max-replies"},
		{"bad debug level", "", []string{"--debug-level", "loud"}, "invalid debug-level"},
		{"negative timeout", "", []string{"--ldaptimeout", "-1"}, "negative"},
		{"value missing in file", "max-replies\n", nil, "needs a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeConf(t, home, tc.conf)
			_, err := Load(append([]string{"--homedir", home}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadNoOptionsAndEnv(t *testing.T) {
	home := t.TempDir()
	writeConf(t, home, "max-replies 99\n")
	t.Setenv("GNUPGHOME", home)
	l, err := Load([]string{"--no-options"})
	if err != nil {
		t.Fatal(err)
	}
	if l.Opts.MaxReplies != 10 || l.ConfigFile != "" || l.Homedir != home {
		t.Fatalf("--no-options: max-replies %d, file %q, homedir %q", l.Opts.MaxReplies, l.ConfigFile, l.Homedir)
	}
	l, err = Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Opts.MaxReplies != 99 {
		t.Fatalf("GNUPGHOME's dirmngr.conf not read: max-replies %d", l.Opts.MaxReplies)
	}
}

// Every option GnuPG 2.2.40's dirmngr knows (--dump-options) must parse.
func TestAllGnuPGOptionsRegistered(t *testing.T) {
	f, err := os.Open("testdata/gnupg-2.2.40-options.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := Defaults()
	fs := newFlagSet(&o)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		name := strings.TrimPrefix(sc.Text(), "--")
		if fs.Lookup(name) == nil {
			t.Errorf("option --%s is not registered", name)
		}
		n++
	}
	if n < 75 {
		t.Fatalf("golden list too short: %d", n)
	}
}

func TestDebugLevelValue(t *testing.T) {
	for in, want := range map[string]int{"none": 0, "basic": 1, "advanced": 3, "expert": 6, "guru": 9, "4": 4, "": 0} {
		got, err := DebugLevelValue(in)
		if err != nil || got != want {
			t.Errorf("DebugLevelValue(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := DebugLevelValue("-1"); err == nil {
		t.Error("negative level accepted")
	}
}

// The golden directory names were printed by GnuPG 2.2.40's
// `gpgconf --homedir H --list-dirs dirmngr-socket` with /run/user/0 present.
func TestSocketDirGolden(t *testing.T) {
	tests := []struct{ homedir, want string }{
		{"/tmp/gh1", "d.ftacegjuwrto6c98adm9ay63"},
		{"/work/x/y", "d.y9emyueyneirchpqbtwauecp"},
	}
	root := t.TempDir()
	uidDir := filepath.Join(root, strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(uidDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		got, err := SocketDir(tc.homedir, root, false)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(uidDir, "gnupg", tc.want); got != want {
			t.Errorf("SocketDir(%s) = %s, want %s", tc.homedir, got, want)
		}
	}
	// The default homedir has no hashed subdirectory.
	got, _ := SocketDir(defaultHomedir(), root, true)
	if want := filepath.Join(uidDir, "gnupg"); got != want {
		t.Errorf("default homedir: %s, want %s", got, want)
	}
	if st, err := os.Stat(got); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket dir not created 0700: %v %v", st, err)
	}
	// Without /run/user/<uid> the socket lives in the homedir.
	got, _ = SocketDir("/tmp/gh1", filepath.Join(root, "none"), false)
	if got != "/tmp/gh1" {
		t.Errorf("fallback: %s", got)
	}
}

func TestClock(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"1700000000!", time.Unix(1700000000, 0), false},
		{"20261124T192605!", time.Date(2026, 11, 24, 19, 26, 5, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
	} {
		o := Defaults()
		o.FakedSystemTime = tc.in
		now, err := o.Clock()
		if tc.bad {
			if err == nil || o.Validate() == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil || !now().Equal(tc.want) {
			t.Errorf("%q: %v %v", tc.in, now(), err)
		}
	}
	o := Defaults()
	o.FakedSystemTime = "1700000000"
	now, _ := o.Clock()
	if d := now().Sub(time.Unix(1700000000, 0)); d < 0 || d > time.Minute {
		t.Errorf("running faked clock off by %v", d)
	}
}

// TestLoadMode: every command uses the GnuPG homedir (GnuPG 2.2's rule);
// only --system selects the system layout, and it excludes --homedir.
func TestLoadMode(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("GNUPGHOME", "")
	t.Setenv("DIRMNGR_SYSTEM_PREFIX", "/prefix")
	tests := []struct {
		args       []string
		system     bool
		config     string
		wantErrStr string
	}{
		{[]string{"--daemon"}, false, filepath.Join(home, ".gnupg"), ""},
		{[]string{"--supervised"}, false, filepath.Join(home, ".gnupg"), ""},
		{[]string{"--server"}, false, filepath.Join(home, ".gnupg"), ""},
		{[]string{"--supervised", "--system"}, true, "/prefix/etc/dirmngr", ""},
		{[]string{"--system", "--list-crls"}, true, "/prefix/etc/dirmngr", ""},
		{[]string{"--daemon", "--homedir", "/h"}, false, "/h", ""},
		{[]string{"--daemon", "--system", "--homedir", "/h"}, false, "", "exclude each other"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			l, err := Load(append(tc.args, "--no-options"))
			if tc.wantErrStr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrStr) {
					t.Fatalf("err %v, want %q", err, tc.wantErrStr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Dirs.System != tc.system || l.Dirs.Config != tc.config {
				t.Fatalf("system %v config %q, want %v %q", l.Dirs.System, l.Dirs.Config, tc.system, tc.config)
			}
		})
	}
	t.Setenv("GNUPGHOME", "/gh")
	if l, err := Load([]string{"--daemon", "--no-options"}); err != nil || l.Homedir != "/gh" || l.Dirs.System {
		t.Fatalf("GNUPGHOME: %+v %v", l, err)
	}
}
