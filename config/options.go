// Package config holds dirmngr's options: their definitions (names, groups,
// help texts, defaults), the command line and configuration-file parsing
// (GnuPG's `name [value]` dirmngr.conf syntax), the home directory and the
// socket location rules. An Options value is an immutable snapshot: the
// daemon swaps in a new one on SIGHUP / RELOADDIRMNGR.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Options is one snapshot of every dirmngr option. Times are in seconds as
// in GnuPG's option syntax; use the Duration helpers.
type Options struct {
	// Commands (only one may be given).
	Server, Daemon, Supervised                 bool
	ListCRLs, LoadCRL, FetchCRL, Shutdown      bool
	Flush                                      bool
	GpgconfList, GpgconfTest, GpgconfVersions  bool
	DumpOptions, DumpOptionTable, Warranty     bool
	Version, Help                              bool
	NoDetach, Sh, Csh, StealSocket             bool
	Homedir, OptionsFile                       string
	System                                     bool // --system: the system-wide layout
	NoOptions                                  bool
	Verbose                                    int
	Quiet, NoGreeting, DebugAll                bool
	DebugLevel, Debug, LogFile                 string
	GnutlsDebug, TLSDebug, DebugWait           int
	AllowVersionCheck                          bool
	ListenBacklog, MaxReplies                  int
	FakedSystemTime                            string
	DisableCheckOwnSocket                      bool
	IgnoreCert, IgnoreCertExtension            []string
	UseTor, NoUseTor, DisableIPv4, DisableIPv6 bool
	StandardResolver, RecursiveResolver        bool
	ResolverTimeout                            int
	Nameserver                                 string
	ConnectTimeout, ConnectQuickTimeout        int
	Keyserver, HKPCACert                       []string
	DisableHTTP, IgnoreHTTPDP, HonorHTTPProxy  bool
	HTTPProxy                                  string
	LDAPWrapperProgram, HTTPWrapperProgram     string
	DisableLDAP, IgnoreLDAPDP, OnlyLDAPProxy   bool
	LDAPProxy                                  string
	LDAPServer                                 []string
	LDAPServerListFile                         string
	AddServers                                 bool
	LDAPTimeout                                int
	AllowOCSP, IgnoreOCSPServiceURL            bool
	OCSPResponder, OCSPSigner                  string
	OCSPMaxClockSkew, OCSPMaxPeriod            int
	OCSPCurrentPeriod                          int
	Force                                      bool
	SocketName                                 string
	DebugCacheExpiredCerts, Batch              bool

	// Extensions of this implementation.
	MaxSessions   int // concurrent sessions; further clients are refused
	IdleTimeout   int // seconds a session may wait for its next command; 0 = none
	ReadyTimeout  int // seconds `--daemon` waits for the detached child
	MaxCRLSize    int // bytes of one CRL
	MaxCRLEntries int // entries of one CRL
	// RequestTimeout bounds one HTTP request, body included (seconds).
	RequestTimeout int
}

// Defaults returns the option values GnuPG 2.2.40 starts with, plus this
// implementation's own defaults.
func Defaults() Options {
	return Options{
		DebugLevel:          "none",
		ListenBacklog:       64,
		MaxReplies:          10,
		ConnectTimeout:      15,
		ConnectQuickTimeout: 2,
		LDAPTimeout:         15,
		OCSPMaxClockSkew:    600,
		OCSPMaxPeriod:       90 * 86400,
		OCSPCurrentPeriod:   3 * 3600,
		MaxSessions:         256,
		IdleTimeout:         3600,
		MaxCRLSize:          512 << 20,
		MaxCRLEntries:       50_000_000,
		ReadyTimeout:        10,
		RequestTimeout:      300,
	}
}

// Seconds converts an option value in seconds into a time.Duration.
func Seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// Group names as dirmngr's --help prints them.
const (
	GroupCommands = "Commands"
	GroupStartup  = "Options used for startup"
	GroupMonitor  = "Options controlling the diagnostic output"
	GroupConfig   = "Options controlling the configuration"
	GroupNetwork  = "Network related options"
	GroupKeysrv   = "Configuration for Keyservers"
	GroupHTTP     = "Configuration for HTTP servers"
	GroupLDAP     = "Configuration of LDAP servers to use"
	GroupOCSP     = "Configuration for OCSP"
	GroupOther    = "Other options"
)

// Def describes one option: its name, where --help shows it, its help text
// and whether it is a command, may appear in dirmngr.conf, and is re-read on
// SIGHUP.
type Def struct {
	Name    string
	Short   string
	Group   string
	ArgName string // e.g. "FILE"; empty for flags
	Help    string // empty = hidden from --help (GnuPG's "@")
	Command bool   // a command such as --server (not allowed in dirmngr.conf)
	NoConf  bool   // only effective on the command line (e.g. --homedir)
	Reread  bool   // re-read on SIGHUP / RELOADDIRMNGR
	target  any
}

// HelpGroup is one group of documented options, for --help and the man
// page.
type HelpGroup struct {
	Name string
	Defs []Def
}

// HelpGroups returns the documented options of defs (Help set), grouped as
// they come.
func HelpGroups(defs []Def) []HelpGroup {
	var out []HelpGroup
	for _, d := range defs {
		if d.Help == "" {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Name != d.Group {
			out = append(out, HelpGroup{Name: d.Group})
		}
		out[len(out)-1].Defs = append(out[len(out)-1].Defs, d)
	}
	return out
}

// Defs returns the option definitions bound to the fields of o, in GnuPG's
// --dump-options order followed by this implementation's extensions.
func (o *Options) Defs() []Def {
	c := func(name, help string, p *bool) Def {
		return Def{Name: name, Group: GroupCommands, Help: help, Command: true, NoConf: true, target: p}
	}
	return []Def{
		c("gpgconf-list", "", &o.GpgconfList),
		c("gpgconf-test", "", &o.GpgconfTest),
		c("gpgconf-versions", "", &o.GpgconfVersions),
		c("server", "run in server mode (foreground)", &o.Server),
		c("daemon", "run in daemon mode (background)", &o.Daemon),
		c("supervised", "run in supervised mode", &o.Supervised),
		c("list-crls", "list the contents of the CRL cache", &o.ListCRLs),
		{Name: "load-crl", Group: GroupCommands, ArgName: "FILE", Help: "load CRL from FILE into cache", Command: true, NoConf: true, target: &o.LoadCRL},
		{Name: "fetch-crl", Group: GroupCommands, ArgName: "URL", Help: "fetch a CRL from URL", Command: true, NoConf: true, target: &o.FetchCRL},
		c("shutdown", "shutdown the dirmngr", &o.Shutdown),
		c("flush", "flush the cache", &o.Flush),
		{Name: "no-detach", Group: GroupStartup, Help: "do not detach from the console", target: &o.NoDetach},
		{Name: "sh", Short: "s", Group: GroupStartup, Help: "sh-style command output", target: &o.Sh},
		{Name: "csh", Short: "c", Group: GroupStartup, Help: "csh-style command output", target: &o.Csh},
		{Name: "steal-socket", Group: GroupStartup, target: &o.StealSocket},
		{Name: "homedir", Group: GroupStartup, ArgName: "DIR", Help: "use DIR as the home directory instead of $GNUPGHOME or ~/.gnupg", NoConf: true, target: &o.Homedir},
		{Name: "system", Group: GroupStartup, Help: "system-wide daemon: /etc/dirmngr, /var/cache/dirmngr, /run/dirmngr/socket", NoConf: true, target: &o.System},
		{Name: "options", Group: GroupStartup, ArgName: "FILE", Help: "read options from FILE", NoConf: true, target: &o.OptionsFile},
		{Name: "no-options", Group: GroupStartup, NoConf: true, target: &o.NoOptions},
		{Name: "verbose", Short: "v", Group: GroupMonitor, Help: "verbose", Reread: true, target: &o.Verbose},
		{Name: "quiet", Short: "q", Group: GroupMonitor, Help: "be somewhat more quiet", Reread: true, target: &o.Quiet},
		{Name: "no-greeting", Group: GroupMonitor, target: &o.NoGreeting},
		{Name: "debug-level", Group: GroupMonitor, ArgName: "LEVEL", Help: "set the debugging level to LEVEL", Reread: true, target: &o.DebugLevel},
		{Name: "debug", Group: GroupMonitor, ArgName: "FLAGS", Reread: true, target: &o.Debug},
		{Name: "debug-all", Group: GroupMonitor, Reread: true, target: &o.DebugAll},
		{Name: "gnutls-debug", Group: GroupMonitor, ArgName: "N", Reread: true, target: &o.GnutlsDebug},
		{Name: "tls-debug", Group: GroupMonitor, ArgName: "N", Reread: true, target: &o.TLSDebug},
		{Name: "debug-wait", Group: GroupMonitor, ArgName: "N", target: &o.DebugWait},
		{Name: "log-file", Group: GroupMonitor, ArgName: "FILE", Help: "write server mode logs to FILE", Reread: true, target: &o.LogFile},
		{Name: "allow-version-check", Group: GroupConfig, Help: "allow online software version check", Reread: true, target: &o.AllowVersionCheck},
		{Name: "listen-backlog", Group: GroupConfig, ArgName: "N", target: &o.ListenBacklog},
		{Name: "max-replies", Group: GroupConfig, ArgName: "N", Help: "do not return more than N items in one query", Reread: true, target: &o.MaxReplies},
		{Name: "faked-system-time", Group: GroupConfig, ArgName: "EPOCH", target: &o.FakedSystemTime},
		{Name: "disable-check-own-socket", Group: GroupConfig, Reread: true, target: &o.DisableCheckOwnSocket},
		{Name: "ignore-cert", Group: GroupConfig, ArgName: "FPR|FILE", Reread: true, target: &o.IgnoreCert},
		{Name: "ignore-cert-extension", Group: GroupConfig, ArgName: "OID", Reread: true, target: &o.IgnoreCertExtension},
		{Name: "use-tor", Group: GroupNetwork, Help: "route all network traffic via Tor", Reread: true, target: &o.UseTor},
		{Name: "no-use-tor", Group: GroupNetwork, Reread: true, target: &o.NoUseTor},
		{Name: "disable-ipv4", Group: GroupNetwork, Reread: true, target: &o.DisableIPv4},
		{Name: "disable-ipv6", Group: GroupNetwork, Reread: true, target: &o.DisableIPv6},
		{Name: "standard-resolver", Group: GroupNetwork, Reread: true, target: &o.StandardResolver},
		{Name: "recursive-resolver", Group: GroupNetwork, Reread: true, target: &o.RecursiveResolver},
		{Name: "resolver-timeout", Group: GroupNetwork, ArgName: "N", Reread: true, target: &o.ResolverTimeout},
		{Name: "nameserver", Group: GroupNetwork, ArgName: "IP", Reread: true, target: &o.Nameserver},
		{Name: "connect-timeout", Group: GroupNetwork, ArgName: "N", Reread: true, target: &o.ConnectTimeout},
		{Name: "connect-quick-timeout", Group: GroupNetwork, ArgName: "N", Reread: true, target: &o.ConnectQuickTimeout},
		{Name: "keyserver", Group: GroupKeysrv, ArgName: "URL", Help: "use keyserver at URL", Reread: true, target: &o.Keyserver},
		{Name: "hkp-cacert", Group: GroupKeysrv, ArgName: "FILE", Help: "use the CA certificates in FILE for HKP over TLS", Reread: true, target: &o.HKPCACert},
		{Name: "disable-http", Group: GroupHTTP, Help: "inhibit the use of HTTP", Reread: true, target: &o.DisableHTTP},
		{Name: "ignore-http-dp", Group: GroupHTTP, Help: "ignore HTTP CRL distribution points", Reread: true, target: &o.IgnoreHTTPDP},
		{Name: "http-proxy", Group: GroupHTTP, ArgName: "URL", Help: "redirect all HTTP requests to URL", Reread: true, target: &o.HTTPProxy},
		{Name: "honor-http-proxy", Group: GroupHTTP, Help: "use system's HTTP proxy setting", Reread: true, target: &o.HonorHTTPProxy},
		{Name: "ldap-wrapper-program", Group: GroupHTTP, ArgName: "FILE", Reread: true, target: &o.LDAPWrapperProgram},
		{Name: "disable-ldap", Group: GroupLDAP, Help: "inhibit the use of LDAP", Reread: true, target: &o.DisableLDAP},
		{Name: "ignore-ldap-dp", Group: GroupLDAP, Help: "ignore LDAP CRL distribution points", Reread: true, target: &o.IgnoreLDAPDP},
		{Name: "ldap-proxy", Group: GroupLDAP, ArgName: "HOST", Help: "use HOST for LDAP queries", Reread: true, target: &o.LDAPProxy},
		{Name: "only-ldap-proxy", Group: GroupLDAP, Help: "do not use fallback hosts with --ldap-proxy", Reread: true, target: &o.OnlyLDAPProxy},
		{Name: "ldapserver", Group: GroupLDAP, ArgName: "SPEC", Help: "use this keyserver to lookup keys", Reread: true, target: &o.LDAPServer},
		{Name: "ldapserverlist-file", Group: GroupLDAP, ArgName: "FILE", Help: "read LDAP server list from FILE", target: &o.LDAPServerListFile},
		{Name: "add-servers", Group: GroupLDAP, Help: "add new servers discovered in CRL distribution points to serverlist", target: &o.AddServers},
		{Name: "ldaptimeout", Group: GroupLDAP, ArgName: "N", Help: "set LDAP timeout to N seconds", Reread: true, target: &o.LDAPTimeout},
		{Name: "allow-ocsp", Group: GroupOCSP, Help: "allow sending OCSP requests", Reread: true, target: &o.AllowOCSP},
		{Name: "ignore-ocsp-service-url", Group: GroupOCSP, Help: "ignore certificate contained OCSP service URLs", Reread: true, target: &o.IgnoreOCSPServiceURL},
		{Name: "ocsp-responder", Group: GroupOCSP, ArgName: "URL", Help: "use OCSP responder at URL", Reread: true, target: &o.OCSPResponder},
		{Name: "ocsp-signer", Group: GroupOCSP, ArgName: "FPR", Help: "OCSP response signed by FPR", Reread: true, target: &o.OCSPSigner},
		{Name: "ocsp-max-clock-skew", Group: GroupOCSP, ArgName: "N", Reread: true, target: &o.OCSPMaxClockSkew},
		{Name: "ocsp-max-period", Group: GroupOCSP, ArgName: "N", Reread: true, target: &o.OCSPMaxPeriod},
		{Name: "ocsp-current-period", Group: GroupOCSP, ArgName: "N", Reread: true, target: &o.OCSPCurrentPeriod},
		{Name: "force", Group: GroupOther, Help: "force loading of outdated CRLs", target: &o.Force},
		{Name: "socket-name", Group: GroupOther, ArgName: "NAME", target: &o.SocketName},
		{Name: "debug-cache-expired-certs", Group: GroupOther, Reread: true, target: &o.DebugCacheExpiredCerts},
		{Name: "batch", Group: GroupOther, target: &o.Batch},
		{Name: "http-wrapper-program", Group: GroupOther, ArgName: "FILE", Reread: true, target: &o.HTTPWrapperProgram},
		{Name: "max-sessions", Group: GroupOther, ArgName: "N", Help: "serve at most N sessions at once", target: &o.MaxSessions},
		{Name: "idle-timeout", Group: GroupOther, ArgName: "N", Help: "close a session idle for N seconds (0 = never)", Reread: true, target: &o.IdleTimeout},
		// 512 MiB: above the largest public CRLs (100-400 MB); memory does
		// not grow with it (CRLs are streamed), it bounds disk and time.
		{Name: "max-crl-size", Group: GroupOther, ArgName: "N", Help: "refuse CRLs larger than N bytes (memory use does not depend on it)", Reread: true, target: &o.MaxCRLSize},
		{Name: "max-crl-entries", Group: GroupOther, ArgName: "N", Help: "refuse CRLs with more than N entries", Reread: true, target: &o.MaxCRLEntries},
		{Name: "ready-timeout", Group: GroupOther, ArgName: "N", target: &o.ReadyTimeout},
		{Name: "request-timeout", Group: GroupOther, ArgName: "N", Help: "give up an HTTP request (CRL, OCSP) not completed after N seconds (connecting is bounded by --connect-timeout)", Reread: true, target: &o.RequestTimeout},
		{Name: "help", Short: "h", Group: GroupOther, Command: true, NoConf: true, target: &o.Help},
		{Name: "version", Group: GroupOther, Command: true, NoConf: true, target: &o.Version},
		{Name: "warranty", Group: GroupOther, Command: true, NoConf: true, target: &o.Warranty},
		{Name: "dump-option-table", Group: GroupOther, Command: true, NoConf: true, target: &o.DumpOptionTable},
		{Name: "dump-options", Group: GroupOther, Command: true, NoConf: true, target: &o.DumpOptions},
	}
}

// Register adds every option of o to fs (pflag, as used by cobra).
func (o *Options) Register(fs *pflag.FlagSet) {
	for _, d := range o.Defs() {
		usage := d.Help
		switch p := d.target.(type) {
		case *bool:
			fs.BoolVarP(p, d.Name, d.Short, *p, usage)
		case *int:
			if d.Name == "verbose" {
				fs.CountVarP(p, d.Name, d.Short, usage)
			} else {
				fs.IntVarP(p, d.Name, d.Short, *p, usage)
			}
		case *string:
			fs.StringVarP(p, d.Name, d.Short, *p, usage)
		case *[]string:
			fs.StringArrayVarP(p, d.Name, d.Short, *p, usage)
		default:
			panic(fmt.Sprintf("config: option %s has unsupported type %T", d.Name, d.target))
		}
		f := fs.Lookup(d.Name)
		if d.Help == "" {
			f.Hidden = true
		}
		if d.ArgName != "" {
			_ = fs.SetAnnotation(d.Name, "argname", []string{d.ArgName})
		}
		if d.Name == "debug-level" {
			f.NoOptDefVal = "" // requires a value
		}
	}
}

// DebugLevelValue turns a --debug-level argument (none, basic, advanced,
// expert, guru or a number) into GnuPG's numeric level.
func DebugLevelValue(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return 0, nil
	case "basic":
		return 1, nil
	case "advanced":
		return 3, nil
	case "expert":
		return 6, nil
	case "guru":
		return 9, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid debug-level %q given (valid: none, basic, advanced, expert, guru or a number)", s)
	}
	return n, nil
}

// Validate checks option values that a flag parser cannot check.
func (o *Options) Validate() error {
	if _, err := DebugLevelValue(o.DebugLevel); err != nil {
		return err
	}
	if _, err := o.Clock(); err != nil {
		return err
	}
	nonNeg := map[string]int{
		"max-replies": o.MaxReplies, "ldaptimeout": o.LDAPTimeout, "connect-timeout": o.ConnectTimeout,
		"ocsp-max-clock-skew": o.OCSPMaxClockSkew, "ocsp-max-period": o.OCSPMaxPeriod,
		"ocsp-current-period": o.OCSPCurrentPeriod, "idle-timeout": o.IdleTimeout,
		"request-timeout": o.RequestTimeout,
		"listen-backlog":  o.ListenBacklog, "debug-wait": o.DebugWait,
	}
	for name, v := range nonNeg {
		if v < 0 {
			return fmt.Errorf("option --%s: negative value %d", name, v)
		}
	}
	if o.MaxSessions < 1 {
		return fmt.Errorf("option --max-sessions: must be at least 1, not %d", o.MaxSessions)
	}
	return nil
}

// Commands returns the names of the commands set in o.
func (o *Options) Commands() []string {
	var cmds []string
	for _, d := range o.Defs() {
		if p, ok := d.target.(*bool); ok && d.Command && *p {
			cmds = append(cmds, d.Name)
		}
	}
	return cmds
}

// Value renders the option's value in o (the Options the Def was taken
// from): "" for an unset string or list, a number, or for flags "" when off
// and "1" when on.
func (d Def) Value() string {
	switch p := d.target.(type) {
	case *bool:
		if *p {
			return "1"
		}
		return ""
	case *int:
		return strconv.Itoa(*p)
	case *string:
		return *p
	case *[]string:
		return strings.Join(*p, ",")
	}
	return ""
}

// IsFlag reports whether the option takes no argument.
func (d Def) IsFlag() bool {
	_, ok := d.target.(*bool)
	return ok || d.Name == "verbose"
}

// Clock returns the time source the options ask for: the system clock, or
// with --faked-system-time (seconds since the epoch, or YYYYMMDDTHHMMSS,
// optionally followed by '!' to freeze it) a clock starting there.
func (o *Options) Clock() (func() time.Time, error) {
	s := o.FakedSystemTime
	if s == "" {
		return time.Now, nil
	}
	frozen := strings.HasSuffix(s, "!")
	s = strings.TrimSuffix(s, "!")
	var base time.Time
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		base = time.Unix(n, 0)
	} else if t, err := time.Parse("20060102T150405", s); err == nil {
		base = t
	} else {
		return nil, fmt.Errorf("option --faked-system-time: %q is neither seconds since the epoch nor YYYYMMDDTHHMMSS", o.FakedSystemTime)
	}
	if frozen {
		return func() time.Time { return base }, nil
	}
	start := time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }, nil
}
