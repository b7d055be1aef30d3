package fetchcrl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Flags are fetch-crl's command-line options; a nil pointer / empty value
// means "not given".
type Flags struct {
	Config         string
	Infodir        *string
	Cadir          *string
	Statedir       *string
	Cfgdir         string
	Output         *string
	Formats        []string
	Defines        []string
	HTTPTimeout    *int
	Parallelism    *int
	AgingTolerance *int
	RandomWait     *int
	NoSymlinks     bool
	Inet6Glue      bool
	Verbose        int
	Quiet          int
	Debug          int
	Anchors        []string
	// Extensions of this implementation.
	Dirmngr string // feed newly installed CRLs to the dirmngr on this socket
}

// FatalError ends the run before any trust anchor is processed, with the
// exit status fetch-crl uses for it.
type FatalError struct {
	Msg    string
	Status int
}

func (e *FatalError) Error() string { return e.Msg }

// Defaults of the global directives (fetch-crl 3.0.22).
var defaults = map[string]string{
	"infodir":          "/etc/grid-security/certificates",
	"formats":          "openssl",
	"opensslmode":      "dual",
	"nametemplate_der": "@ANCHORNAME@.@R@.crl",
	"nametemplate_pem": "@ANCHORNAME@.@R@.crl.pem",
	"catemplate":       "@ALIAS@.pem;@ALIAS@.@R@;@ANCHORNAME@.@R@",
	"agingtolerance":   "24",
	"httptimeout":      "120",
	"expirestolerance": "25200",
	"maxcachetime":     "345600",
	"logmode":          "qualified",
	"syslogfacility":   "daemon",
	"rcmode":           "normal",
	"version":          "3+",
	"packager":         "EUGridPMA",
}

// DefaultConfigFiles are tried in order when -c is not given.
var DefaultConfigFiles = []string{"/etc/fetch-crl.conf", "/etc/fetch-crl.cnf"}

// DefaultCfgdir is merged after the main configuration file.
var DefaultCfgdir = "/etc/fetch-crl.d"

// DefaultStatedir is used when it exists and is writable.
var DefaultStatedir = "/var/cache/fetch-crl"

// LoadConfig builds the configuration from the files, the cfgdir, the
// --define options, the command-line flags and the defaults, in fetch-crl's
// precedence, and parses it into Settings. warn receives non-fatal remarks
// (inline comments). Every error is a *FatalError.
func LoadConfig(f *Flags, warn func(string)) (*Settings, error) {
	cfg := Tiny{"_": {}}
	if err := readConfigFile(f.Config, cfg, warn); err != nil {
		return nil, err
	}
	if err := readCfgdir(f.Cfgdir, cfg, warn); err != nil {
		return nil, err
	}
	if err := applyDefines(f.Defines, cfg); err != nil {
		return nil, err
	}
	applyFlags(f, cfg["_"])
	applyDefaults(cfg["_"])
	return parseSettings(cfg)
}

// readConfigFile reads -c, else the first default file that exists.
func readConfigFile(file string, cfg Tiny, warn func(string)) error {
	if file == "" {
		for _, c := range DefaultConfigFiles {
			if _, err := os.Stat(c); err == nil {
				file = c
				break
			}
		}
	}
	if file == "" {
		return nil
	}
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		return &FatalError{fmt.Sprintf("Invalid config file %s:\n  File '%s' does not exist", file, file), 2}
	case fi.IsDir():
		return &FatalError{fmt.Sprintf("Invalid config file %s:\n  '%s' is a directory, not a file", file, file), 2}
	}
	if err := ReadTinyFile(file, cfg, warn); err != nil {
		return &FatalError{fmt.Sprintf("Invalid config file %s:\n  %v", file, err), 2}
	}
	return nil
}

// readCfgdir merges every regular file of the configuration directory.
func readCfgdir(cfgdir string, cfg Tiny, warn func(string)) error {
	if cfgdir == "" {
		cfgdir = cfg["_"]["cfgdir"]
	}
	if cfgdir == "" {
		cfgdir = DefaultCfgdir
	}
	ents, err := os.ReadDir(cfgdir)
	if err != nil {
		return nil // a missing cfgdir is fine
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names) // fetch-crl 3 uses readdir order; sorted is deterministic
	for _, n := range names {
		p := filepath.Join(cfgdir, n)
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := ReadTinyFile(p, cfg, warn); err != nil {
			return &FatalError{fmt.Sprintf("Invalid config file %s:\n  %v", p, err), 2}
		}
	}
	return nil
}

// applyDefines applies --define key=value and section:key=value; an empty
// value unsets (fetch-crl 3 ignored it for toggles).
func applyDefines(defines []string, cfg Tiny) error {
	for _, d := range defines {
		m := defineRE.FindStringSubmatch(d)
		if m == nil {
			return &FatalError{fmt.Sprintf("Invalid --define argument %q (want key=value or section:key=value)", d), 1}
		}
		sect := m[1]
		if sect == "" {
			sect = "_"
		}
		key, val := strings.TrimSpace(m[2]), strings.TrimSpace(m[3])
		if val == "" {
			delete(cfg[sect], key)
			continue
		}
		cfg.Set(sect, key, val)
	}
	return nil
}

// applyFlags lets the command-line options override the files.
func applyFlags(f *Flags, g map[string]string) {
	setp := func(key string, v *string) {
		if v != nil {
			g[key] = *v
		}
	}
	seti := func(key string, v *int) {
		if v != nil {
			g[key] = strconv.Itoa(*v)
		}
	}
	setp("infodir", f.Infodir)
	setp("cadir", f.Cadir)
	setp("statedir", f.Statedir)
	setp("output", f.Output)
	if len(f.Formats) > 0 {
		g["formats"] = strings.Join(f.Formats, ",")
	}
	seti("httptimeout", f.HTTPTimeout)
	if f.Parallelism != nil && *f.Parallelism != 0 {
		seti("parallelism", f.Parallelism)
	}
	seti("agingtolerance", f.AgingTolerance)
	seti("randomwait", f.RandomWait)
	if f.NoSymlinks {
		g["nosymlinks"] = "1"
	}
	if f.Inet6Glue {
		g["inet6glue"] = "1"
	}
	switch {
	case f.Verbose > 0:
		g["verbosity"] = strconv.Itoa(f.Verbose)
	case f.Quiet > 1 || (f.Quiet == 1 && !truthy(g["noquiet"])):
		g["verbosity"] = "-1"
	}
	if f.Dirmngr != "" {
		g["dirmngr_socket"] = f.Dirmngr
	}
}

// applyDefaults fills in what is still unset.
func applyDefaults(g map[string]string) {
	for k, v := range defaults {
		if _, ok := g[k]; !ok {
			g[k] = v
		}
	}
	if _, ok := g["cadir"]; !ok {
		g["cadir"] = g["infodir"]
	}
	if _, ok := g["output"]; !ok {
		g["output"] = g["infodir"]
	}
	if _, ok := g["statedir"]; !ok {
		if fi, err := os.Stat(DefaultStatedir); err == nil && fi.IsDir() && writable(DefaultStatedir) {
			g["statedir"] = DefaultStatedir
		}
	}
	if truthy(g["stateless"]) {
		delete(g, "statedir")
	}
}

func writable(dir string) bool {
	f, err := os.CreateTemp(dir, ".fetch-crl-probe-*")
	if err != nil {
		return false
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return true
}
