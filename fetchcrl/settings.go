package fetchcrl

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Settings is fetch-crl's configuration, parsed once from the merged
// ConfigTiny document (files, --define, flags, defaults). Bad values are
// reported by LoadConfig; nothing downstream parses a string again.
type Settings struct {
	Infodir  string // "" disables scanning
	Cadir    string
	Output   string
	Statedir string // "" means stateless
	outputs  map[string]string

	Formats     Formats
	OpenSSLDual bool // opensslmode dual (default) rather than single

	ExpiresTolerance int64  // seconds
	MaxCacheTime     int64  // seconds
	CacheControl     string // cache_control_request: max-age digits, "" when unset

	Parallelism int // 0: sequential
	RandomWait  int // seconds
	NoSymlinks  bool
	Backups     bool
	NoNSSVerify bool
	NSSDBPrefix string

	Verbosity      int
	LogMode        string
	SyslogFacility string
	RCMode         string

	Postexec string
	Version  string // for the default User-Agent
	Packager string

	DirmngrSocket string // --dirmngr: feed new CRLs to this daemon

	tiny Tiny // per-anchor sections, resolved by Anchor
}

// Formats are the output formats to write, always in this order.
type Formats struct{ PEM, DER, OpenSSL, NSS bool }

// AnchorSettings are one trust anchor's values: [alias], then
// [anchorname], then global, with @ALIAS@, @ANCHORNAME@ and @STATUS@
// expanded.
type AnchorSettings struct {
	PrependURL, PostpendURL string
	AgingTolerance          int // hours; 0: a failed download is an error at once
	HTTPTimeout             int // seconds
	NoWarnings, NoErrors    bool
	NoCache                 bool
	HTTPProxy, HTTPSProxy   string
	NameTemplateDER         string
	NameTemplatePEM         string
	Cadir                   string
	CATemplates             []string
	Statedir                string
	UserAgent               string
	Postexec                string
}

// OutputDir is the directory for a format (output_<format>, else output).
func (s *Settings) OutputDir(format string) string {
	if d := s.outputs[format]; d != "" {
		return d
	}
	return s.Output
}

// numberKeys are the integer directives, with whether they may appear in
// trust-anchor sections and whether a leading minus is allowed.
var numberKeys = map[string]struct{ perAnchor, signed bool }{
	"agingtolerance": {perAnchor: true}, "httptimeout": {perAnchor: true},
	"parallelism": {}, "randomwait": {}, "expirestolerance": {}, "maxcachetime": {},
	"verbosity": {signed: true},
}

// defineRE is --define's [section:]key=value.
var defineRE = regexp.MustCompile(`^(?:(\w+):)?([^=]+)=(.*)$`)

var digitsRE = regexp.MustCompile(`^\d+$`)
var signedRE = regexp.MustCompile(`^-?\d+$`)

// checkNumbers rejects integer directives that are not numbers, in the
// global section and in every other section (any may be an anchor's).
func checkNumbers(cfg Tiny) error {
	sects := make([]string, 0, len(cfg))
	for s := range cfg {
		sects = append(sects, s)
	}
	sort.Strings(sects)
	for _, sect := range sects {
		for key, kind := range numberKeys {
			v, ok := cfg[sect][key]
			if !ok || (sect != "_" && !kind.perAnchor) {
				continue
			}
			re := digitsRE
			if kind.signed {
				re = signedRE
			}
			why := ""
			if !re.MatchString(v) {
				why = "not a number"
			} else if _, err := strconv.Atoi(v); err != nil {
				why = "too large"
			}
			if why != "" {
				where := ""
				if sect != "_" {
					where = " in [" + sect + "]"
				}
				return &FatalError{fmt.Sprintf("Invalid %s value '%s'%s (%s)", key, v, where, why), 2}
			}
		}
	}
	return nil
}

// atoi converts a value checkNumbers accepted (or a default); anything
// else is a programming error and reads as 0.
func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// parseSettings turns the merged document into Settings; cfg["_"] has the
// defaults filled in.
func parseSettings(cfg Tiny) (*Settings, error) {
	if err := checkNumbers(cfg); err != nil {
		return nil, err
	}
	g := cfg["_"]
	s := &Settings{
		Infodir: g["infodir"], Cadir: g["cadir"], Output: g["output"], Statedir: g["statedir"],
		outputs:     map[string]string{},
		OpenSSLDual: g["opensslmode"] == "dual",
		Parallelism: atoi(g["parallelism"]), RandomWait: atoi(g["randomwait"]),
		NoSymlinks: truthy(g["nosymlinks"]), Backups: truthy(g["backups"]),
		NoNSSVerify: truthy(g["nonssverify"]), NSSDBPrefix: g["nssdbprefix"],
		Verbosity: atoi(g["verbosity"]), LogMode: g["logmode"], SyslogFacility: g["syslogfacility"],
		RCMode: g["rcmode"], Postexec: g["postexec"], Version: g["version"], Packager: g["packager"],
		DirmngrSocket: g["dirmngr_socket"],
		tiny:          cfg,
	}
	s.ExpiresTolerance = int64(atoi(g["expirestolerance"]))
	s.MaxCacheTime = int64(atoi(g["maxcachetime"]))
	for _, f := range []string{"der", "pem", "openssl", "nss"} {
		s.outputs[f] = g["output_"+f]
	}
	if err := s.parseFormats(g["formats"]); err != nil {
		return nil, err
	}
	if cc, ok := g["cache_control_request"]; ok {
		if !digitsRE.MatchString(cc) {
			return nil, &FatalError{"Request cache control is invalid (not a number)", 2}
		}
		s.CacheControl = cc
	}
	if s.Statedir != "" {
		if fi, err := os.Stat(s.Statedir); err != nil || !fi.IsDir() {
			return nil, &FatalError{fmt.Sprintf("Invalid state directory %s", s.Statedir), 2}
		}
	}
	if s.Infodir != "" {
		if fi, err := os.Stat(s.Infodir); err != nil || !fi.IsDir() {
			return nil, &FatalError{fmt.Sprintf("Invalid meta-data directory %s", s.Infodir), 2}
		}
	}
	switch s.RCMode {
	case "normal", "differentiated", "noretrievalerrors":
	default:
		return nil, &FatalError{fmt.Sprintf("ERROR Attempt to set rcmode to invalid value of %s", s.RCMode), 1}
	}
	return s, nil
}

// parseFormats reads the formats list (split on [\001;,\s]+, as fetch-crl).
func (s *Settings) parseFormats(list string) error {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == '\x01' || r == ';' || r == ',' || r == ' ' || r == '\t' }) {
		switch f {
		case "pem":
			s.Formats.PEM = true
		case "der":
			s.Formats.DER = true
		case "openssl":
			s.Formats.OpenSSL = true
		case "nss":
			s.Formats.NSS = true
		default:
			return &FatalError{fmt.Sprintf("Invalid output format %s (use openssl, pem, der or nss)", f), 2}
		}
	}
	return nil
}

// taKeys are looked up per trust anchor: [alias], [anchorname], global.
var taKeys = []string{
	"prepend_url", "postpend_url", "agingtolerance", "httptimeout", "nowarnings", "noerrors", "nocache",
	"http_proxy", "https_proxy", "nametemplate_der", "nametemplate_pem", "cadir", "catemplate", "statedir",
}

// removers delete an inherited value; enablers delete a "no" toggle.
var removers = map[string]string{
	"nohttp_proxy": "http_proxy", "nohttps_proxy": "https_proxy", "noprepend_url": "prepend_url",
	"nopostpend_url": "postpend_url", "nostatedir": "statedir",
	"warnings": "nowarnings", "errors": "noerrors", "cache": "nocache",
}

// Anchor resolves the settings of one trust anchor.
func (s *Settings) Anchor(alias, anchorname, status string) AnchorSettings {
	v := s.anchorValues(alias, anchorname)
	tokens := map[string]string{"@ANCHORNAME@": anchorname, "@STATUS@": status, "@ALIAS@": alias}
	for k, val := range v {
		v[k] = expand(val, tokens)
	}
	return AnchorSettings{
		PrependURL: v["prepend_url"], PostpendURL: v["postpend_url"],
		AgingTolerance: atoi(v["agingtolerance"]), HTTPTimeout: atoi(v["httptimeout"]),
		NoWarnings: truthy(v["nowarnings"]), NoErrors: truthy(v["noerrors"]), NoCache: truthy(v["nocache"]),
		HTTPProxy: v["http_proxy"], HTTPSProxy: v["https_proxy"],
		NameTemplateDER: v["nametemplate_der"], NameTemplatePEM: v["nametemplate_pem"],
		Cadir: v["cadir"], CATemplates: splitTemplates(v["catemplate"]), Statedir: v["statedir"],
		UserAgent: v["user_agent"], Postexec: v["postexec"],
	}
}

// anchorValues applies fetch-crl's lookup rules to the raw strings.
func (s *Settings) anchorValues(alias, anchorname string) map[string]string {
	cfg := s.tiny
	out := map[string]string{}
	for _, k := range taKeys {
		for _, sect := range []string{alias, anchorname, "_"} {
			if v, ok := cfg[sect][k]; ok && truthy(v) {
				out[k] = v
				break
			}
		}
	}
	// agingtolerance 0 is meaningful per anchor too (fetch-crl ignored it).
	out["agingtolerance"] = cfg["_"]["agingtolerance"]
	for _, sect := range []string{anchorname, alias} {
		if v, ok := cfg[sect]["agingtolerance"]; ok {
			out["agingtolerance"] = v
		}
	}
	for _, sect := range []string{"_", anchorname, alias} {
		for r, k := range removers {
			if _, ok := cfg[sect][r]; ok {
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
	return out
}

// crlURL returns a crl_url.<i> override from [anchorname], then [alias]
// (alias wins).
func (s *Settings) crlURL(anchorname, alias string, i int) (string, bool) {
	key := "crl_url." + strconv.Itoa(i)
	v, ok := s.tiny[alias][key]
	if !ok {
		v, ok = s.tiny[anchorname][key]
	}
	return v, ok
}

func splitTemplates(s string) []string {
	var out []string
	for _, t := range urlSplit.Split(strings.ReplaceAll(s, "\x01", ";"), -1) {
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

func expand(s string, tokens map[string]string) string {
	for k, v := range tokens {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// truthy is Perl truthiness for configuration values.
func truthy(v string) bool { return v != "" && v != "0" }
