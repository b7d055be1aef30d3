package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Entry is one `name [value]` line of a configuration file.
type Entry struct {
	Name, Value string
	Line        int
}

// MaxConfigLine bounds the length of a configuration file line.
const MaxConfigLine = 64 * 1024

// ParseFile reads a dirmngr.conf-style file: one option per line, the long
// option name without the leading dashes, optionally followed by blanks and a
// value (which may be enclosed in double quotes). Empty lines and lines whose
// first non-blank character is '#' are ignored.
func ParseFile(r io.Reader) ([]Entry, error) {
	var entries []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxConfigLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '\t'); i >= 0 {
			name, value = line[:i], line[i+1:]
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		entries = append(entries, Entry{Name: strings.TrimPrefix(name, "--"), Value: value, Line: n})
	}
	if err := sc.Err(); err != nil {
		return entries, fmt.Errorf("line %d: %w", n+1, err)
	}
	return entries, nil
}

// Loaded is the result of Load: the effective options and what was read.
type Loaded struct {
	Opts       *Options
	Args       []string // positional arguments (e.g. files for --load-crl)
	Warnings   []string // non-fatal problems, e.g. unknown options in the file
	ConfigFile string   // the configuration file name ("" with --no-options)
	ConfigRead bool     // whether the file existed and was read
	Homedir    string   // absolute home directory (system mode: the config directory)
	Dirs       Dirs     // where data lives (homedir or system layout)
}

// Dirs is where a dirmngr keeps its files. In homedir mode (GnuPG 2.2's
// way, the default for every command, and how gpgsm starts it) everything is
// below the homedir; in system mode (--system, which the packaged system
// units pass: the seed manual's system-wide daemon) the classic directories
// are used.
type Dirs struct {
	System      bool
	Config      string // dirmngr.conf, trusted-certs/, extra-certs/
	Data        string // extra data (system: /var/lib/dirmngr)
	Cache       string // crls.d lives below it
	LDAPServers string // default --ldapserverlist-file
	Socket      string // system mode: the socket ("" = GnuPG's socket rules)
}

// SystemPrefix prefixes the system-mode directories; tests and packagers
// may set it (environment DIRMNGR_SYSTEM_PREFIX).
func SystemPrefix() string { return os.Getenv("DIRMNGR_SYSTEM_PREFIX") }

// SystemDirs is the system-mode layout.
func SystemDirs() Dirs {
	p := SystemPrefix()
	return Dirs{
		System:      true,
		Config:      p + "/etc/dirmngr",
		Data:        p + "/var/lib/dirmngr",
		Cache:       p + "/var/cache/dirmngr",
		LDAPServers: p + "/etc/dirmngr/ldapservers.conf",
		Socket:      p + "/run/dirmngr/socket",
	}
}

// HomeDirs is the homedir-mode layout.
func HomeDirs(homedir string) Dirs {
	return Dirs{Config: homedir, Data: homedir, Cache: homedir, LDAPServers: filepath.Join(homedir, "dirmngr_ldapservers.conf")}
}

// systemMode reports whether args ask for the system-wide layout: only an
// explicit --system does (GnuPG 2.2 always uses the homedir). --system with
// --homedir is a contradiction; $GNUPGHOME is ignored in system mode.
func systemMode(pre *Options) (bool, error) {
	if pre.System && pre.Homedir != "" {
		return false, errors.New("--system and --homedir exclude each other")
	}
	return pre.System, nil
}

// Load computes the effective options from args (the command line without
// the program name) and the configuration file: defaults, then the file,
// then the command line, which wins. Unknown options on the command line are
// errors; in the file they are warnings. The same function is used on
// SIGHUP, so a reload sees exactly what a restart would.
func Load(args []string) (*Loaded, error) {
	// First pass: only to learn --homedir, --options and --no-options.
	var pre Options = Defaults()
	fs := newFlagSet(&pre)
	if err := ParseArgs(fs, args); err != nil {
		return nil, err
	}
	res := &Loaded{}
	res.Homedir = StandardHomedir()
	if pre.Homedir != "" {
		res.Homedir = absClean(pre.Homedir)
	}
	res.Dirs = HomeDirs(res.Homedir)
	system, err := systemMode(&pre)
	if err != nil {
		return nil, err
	}
	if system {
		res.Dirs = SystemDirs()
		res.Homedir = res.Dirs.Config
	}

	opts := Defaults()
	fs = newFlagSet(&opts)
	if !pre.NoOptions {
		explicit := pre.OptionsFile != ""
		res.ConfigFile = filepath.Join(res.Homedir, "dirmngr.conf")
		if explicit {
			res.ConfigFile = absClean(pre.OptionsFile)
		}
		f, err := os.Open(res.ConfigFile)
		switch {
		case err == nil:
			warnings, err := applyFile(fs, f, res.ConfigFile)
			f.Close()
			if err != nil {
				return nil, err
			}
			res.ConfigRead = true
			res.Warnings = append(res.Warnings, warnings...)
		case explicit || !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("option file '%s': %w", res.ConfigFile, err)
		}
	}
	if err := ParseArgs(fs, args); err != nil {
		return nil, err
	}
	opts.Homedir = res.Homedir
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	res.Opts = &opts
	res.Args = fs.Args()
	return res, nil
}

func newFlagSet(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("dirmngr", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(true)
	o.Register(fs)
	return fs
}

// applyFile sets the options of one configuration file on fs.
func applyFile(fs *pflag.FlagSet, r io.Reader, name string) ([]string, error) {
	entries, err := ParseFile(r)
	if err != nil {
		return nil, fmt.Errorf("reading '%s': %w", name, err)
	}
	defs := map[string]Def{}
	var scratch Options
	for _, d := range scratch.Defs() {
		defs[d.Name] = d
	}
	var warnings []string
	for _, e := range entries {
		d, known := defs[e.Name]
		f := fs.Lookup(e.Name)
		if !known || f == nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: unknown option '%s' ignored", name, e.Line, e.Name))
			continue
		}
		if d.NoConf {
			warnings = append(warnings, fmt.Sprintf("%s:%d: option '%s' is not allowed in a configuration file - ignored", name, e.Line, e.Name))
			continue
		}
		value := e.Value
		if f.Value.Type() == "bool" && value == "" {
			value = "true"
		}
		if f.Value.Type() == "count" && value == "" {
			value = "+1"
		}
		if value == "" && f.Value.Type() != "string" {
			return nil, fmt.Errorf("%s:%d: option '%s' needs a value", name, e.Line, e.Name)
		}
		if err := fs.Set(e.Name, value); err != nil {
			return nil, fmt.Errorf("%s:%d: option '%s': %w", name, e.Line, e.Name, err)
		}
	}
	return warnings, nil
}

// WantsGpgconfTest reports whether the command line asks for
// --gpgconf-test (abbreviations included).
func WantsGpgconfTest(args []string) bool {
	var o Options = Defaults()
	fs := newFlagSet(&o)
	expanded, err := ExpandAbbrev(fs, args)
	if err != nil {
		return false
	}
	for _, a := range expanded {
		if a == "--" {
			break
		}
		if a == "--gpgconf-test" {
			return true
		}
	}
	return false
}

// ConfigProblems checks the configuration file args select, line by line,
// and returns its bad lines in GnuPG's words ("FILE:LINE: invalid option",
// "FILE:LINE: missing argument"; "FILE:LINE: invalid argument" for a value
// this implementation cannot use), as `dirmngr --gpgconf-test` reports them.
func ConfigProblems(args []string) ([]string, error) {
	var pre Options = Defaults()
	fs := newFlagSet(&pre)
	fs.ParseErrorsWhitelist.UnknownFlags = true
	if err := ParseArgs(fs, args); err != nil {
		return nil, err
	}
	if pre.NoOptions {
		return nil, nil
	}
	name := filepath.Join(StandardHomedir(), "dirmngr.conf")
	switch system, _ := systemMode(&pre); {
	case pre.OptionsFile != "":
		name = absClean(pre.OptionsFile)
	case system:
		name = filepath.Join(SystemDirs().Config, "dirmngr.conf")
	case pre.Homedir != "":
		name = filepath.Join(absClean(pre.Homedir), "dirmngr.conf")
	}
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) && pre.OptionsFile == "" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("option file '%s': %w", name, err)
	}
	defer f.Close()
	entries, err := ParseFile(f)
	if err != nil {
		return nil, fmt.Errorf("reading '%s': %w", name, err)
	}
	var scratch Options = Defaults()
	check := newFlagSet(&scratch)
	var problems []string
	for _, e := range entries {
		fl := check.Lookup(e.Name)
		what := ""
		switch {
		case fl == nil:
			what = "invalid option"
		case e.Value == "" && takesValue(fl):
			what = "missing argument"
		case e.Value != "" && takesValue(fl):
			if err := check.Set(e.Name, e.Value); err != nil {
				what = "invalid argument"
			}
		}
		if what != "" {
			problems = append(problems, fmt.Sprintf("%s:%d: %s", name, e.Line, what))
		}
	}
	return problems, nil
}
