package fetchcrl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

var defineRE = regexp.MustCompile(`^(?:(\w+):)?([^=]+)=(.*)$`)

// LoadConfig builds the configuration from the files, the cfgdir, the
// --define options, the command-line flags and the defaults, in fetch-crl's
// precedence. warn receives non-fatal remarks (inline comments).
func LoadConfig(f *Flags, warn func(string)) (Tiny, error) {
	cfg := Tiny{"_": {}}
	file := f.Config
	if file == "" {
		for _, c := range DefaultConfigFiles {
			if _, err := os.Stat(c); err == nil {
				file = c
				break
			}
		}
	}
	if file != "" {
		fi, err := os.Stat(file)
		switch {
		case err != nil:
			return nil, &FatalError{fmt.Sprintf("Invalid config file %s:\n  File '%s' does not exist", file, file), 2}
		case fi.IsDir():
			return nil, &FatalError{fmt.Sprintf("Invalid config file %s:\n  '%s' is a directory, not a file", file, file), 2}
		}
		if err := ReadTinyFile(file, cfg, warn); err != nil {
			return nil, &FatalError{fmt.Sprintf("Invalid config file %s:\n  %v", file, err), 2}
		}
	}
	cfgdir := f.Cfgdir
	if cfgdir == "" {
		cfgdir = cfg["_"]["cfgdir"]
	}
	if cfgdir == "" {
		cfgdir = DefaultCfgdir
	}
	if ents, err := os.ReadDir(cfgdir); err == nil {
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
				return nil, &FatalError{fmt.Sprintf("Invalid config file %s:\n  %v", p, err), 2}
			}
		}
	}
	for _, d := range f.Defines {
		m := defineRE.FindStringSubmatch(d)
		if m == nil {
			return nil, &FatalError{fmt.Sprintf("Invalid --define argument %q (want key=value or section:key=value)", d), 1}
		}
		sect := m[1]
		if sect == "" {
			sect = "_"
		}
		key, val := strings.TrimSpace(m[2]), strings.TrimSpace(m[3])
		if val == "" {
			// An empty value unsets (fetch-crl 3 ignored it for toggles).
			delete(cfg[sect], key)
			continue
		}
		cfg.Set(sect, key, val)
	}
	g := cfg["_"]
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
	if sd, ok := g["statedir"]; ok && sd != "" {
		if fi, err := os.Stat(sd); err != nil || !fi.IsDir() {
			return nil, &FatalError{fmt.Sprintf("Invalid state directory %s", sd), 2}
		}
	}
	if inf := g["infodir"]; inf != "" {
		if fi, err := os.Stat(inf); err != nil || !fi.IsDir() {
			return nil, &FatalError{fmt.Sprintf("Invalid meta-data directory %s", inf), 2}
		}
	}
	if cc, ok := g["cache_control_request"]; ok {
		if _, err := strconv.Atoi(cc); err != nil {
			return nil, &FatalError{"Request cache control is invalid (not a number)", 2}
		}
	}
	switch g["rcmode"] {
	case "normal", "differentiated", "noretrievalerrors":
	default:
		return nil, &FatalError{fmt.Sprintf("ERROR Attempt to set rcmode to invalid value of %s", g["rcmode"]), 1}
	}
	return cfg, nil
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

// truthy is Perl truthiness for configuration values.
func truthy(v string) bool { return v != "" && v != "0" }

// taKeys are looked up per trust anchor: [alias], [anchorname], global.
var taKeys = map[string]bool{
	"prepend_url": true, "postpend_url": true, "agingtolerance": true, "httptimeout": true,
	"proctimeout": true, "nowarnings": true, "noerrors": true, "nocache": true, "http_proxy": true,
	"https_proxy": true, "nametemplate_der": true, "nametemplate_pem": true, "cadir": true,
	"catemplate": true, "statedir": true,
}

// removers delete an inherited value; enablers delete a "no" toggle.
var removers = map[string]string{
	"nohttp_proxy": "http_proxy", "nohttps_proxy": "https_proxy", "noprepend_url": "prepend_url",
	"nopostpend_url": "postpend_url", "nostatedir": "statedir",
}
var enablers = map[string]string{"warnings": "nowarnings", "errors": "noerrors", "cache": "nocache"}

// anchorSettings resolves the per-anchor values.
func anchorSettings(cfg Tiny, alias, anchorname, status string) map[string]string {
	out := map[string]string{}
	for k := range taKeys {
		for _, sect := range []string{alias, anchorname, "_"} {
			if v, ok := cfg[sect][k]; ok && truthy(v) {
				out[k] = v
				break
			}
		}
	}
	// agingtolerance 0 is meaningful per anchor too (fetch-crl ignored it).
	for _, sect := range []string{alias, anchorname} {
		if v, ok := cfg[sect]["agingtolerance"]; ok {
			out["agingtolerance"] = v
			break
		}
	}
	if _, ok := out["agingtolerance"]; !ok {
		out["agingtolerance"] = cfg["_"]["agingtolerance"]
	}
	for _, sect := range []string{"_", anchorname, alias} {
		for r, k := range removers {
			if _, ok := cfg[sect][r]; ok {
				delete(out, k)
			}
		}
		for e, k := range enablers {
			if _, ok := cfg[sect][e]; ok {
				delete(out, k)
			}
		}
	}
	if ua, ok := cfg[alias]["user_agent"]; ok {
		out["user_agent"] = ua
	} else if ua, ok := cfg["_"]["user_agent"]; ok {
		out["user_agent"] = ua
	}
	if pe, ok := cfg[alias]["postexec"]; ok {
		out["postexec"] = pe
	}
	for k, v := range out {
		out[k] = expand(v, map[string]string{"@ANCHORNAME@": anchorname, "@STATUS@": status, "@ALIAS@": alias})
	}
	return out
}

func expand(s string, tokens map[string]string) string {
	for k, v := range tokens {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// errNoAnchor is returned for positional anchors without metadata.
var errNoAnchor = errors.New("no trust anchor metadata")
