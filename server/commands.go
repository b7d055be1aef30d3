package server

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/ldap"
	"github.com/dirmngr/dirmngr/services"
)

// The help texts: the first line of each is the synopsis GnuPG's dirmngr
// lists for HELP (clients may parse it); the rest describes this
// implementation.
const (
	helpDNSCert    = "DNS_CERT <subtype> <name>\n\nOpenPGP DNS certificate lookup. Not implemented by this X.509 dirmngr."
	helpWKDGet     = "WKD_GET [--submission-address|--policy-flags] <user_id>\n\nOpenPGP Web Key Directory lookup. Not implemented by this X.509 dirmngr."
	helpLDAPServer = "LDAPSERVER [--clear] <data>\n\nAdd an LDAP server for this session. DATA has the format of the\nserver list file (host:port:user:pass:base:flags); a leading \"ldap:\"\nis allowed. Without DATA all servers in use are listed as status\nlines (passwords masked). --clear removes the session's servers."
	helpISValid    = "ISVALID [--only-ocsp] [--force-default-responder] <certificate_id> [<certificate_fpr>]\n\nCheck whether the certificate CERTIFICATE_ID (SHA-1 hash of the issuer\nDN, a dot, the hex serial number) is valid, using cached CRLs, fetching\nthem when needed, or OCSP when CERTIFICATE_FPR is given and OCSP is\nallowed. The certificate may be requested with INQUIRE SENDCERT.\n--only-ocsp: never fall back to CRLs.\n--force-default-responder: use only the configured OCSP responder."
	helpCheckCRL   = "CHECKCRL [<fingerprint>]\n\nCheck a certificate against its CRL. The certificate is taken from the\ncache when FINGERPRINT is known, else requested with INQUIRE TARGETCERT."
	helpCheckOCSP  = "CHECKOCSP [--force-default-responder] [<fingerprint>]\n\nCheck a certificate with OCSP. The certificate is taken from the cache\nwhen FINGERPRINT is known, else requested with INQUIRE TARGETCERT."
	helpLookup     = "LOOKUP [--url] [--single] [--cache-only] <pattern>\n\nLook up certificates matching PATTERN (in the cache and the configured\nLDAP servers) or fetch one from a URL with --url. Each certificate is\nreturned as data followed by END."
	helpLoadCRL    = "LOADCRL [--url] <filename|url>\n\nLoad a CRL from a file readable by the daemon (absolute name) or, with\n--url, from a URL into the cache."
	helpListCRLs   = "LISTCRLS\n\nList the cached CRLs."
	helpCacheCert  = "CACHECERT\n\nPut the certificate sent with INQUIRE TARGETCERT into the cache."
	helpValidate   = "VALIDATE [--systrust] [--tls] [--no-crl]\n\nValidate the certificate sent with INQUIRE TARGETCERT (or, with --tls,\nthe PEM chain sent with INQUIRE CERTLIST)."
	helpKeyserver  = "KEYSERVER [<options>] [<uri>|<host>]\n\nOpenPGP keyserver configuration. Not implemented by this X.509 dirmngr."
	helpKSSearch   = "KS_SEARCH {<pattern>}\n\nOpenPGP keyserver search. Not implemented by this X.509 dirmngr."
	helpKSGet      = "KS_GET [--quick] [--ldap] [--first|--next] {<pattern>}\n\nOpenPGP keyserver retrieval. Not implemented by this X.509 dirmngr."
	helpKSFetch    = "KS_FETCH <URL>\n\nOpenPGP key retrieval by URL. Not implemented by this X.509 dirmngr."
	helpKSPut      = "KS_PUT\n\nOpenPGP key upload. Not implemented by this X.509 dirmngr."
	helpGetInfo    = "GETINFO <what>\n\nReturn information about the daemon. WHAT is one of:\n\nversion     - the version of the program\npid         - the process id of the server\ntor         - OK if running in Tor mode (never, here)\ndnsinfo     - information about the DNS resolver\nsocket_name - the name of the socket\nsession_id  - the current session id\nworkqueue   - the work queue\ngetenv NAME - the value of the environment variable NAME\nstats       - sessions, requests, time busy answering them (busy_us), cache statistics"
	helpLoadSWDB   = "LOADSWDB [--force]\n\nGnuPG software version database. Not implemented by this X.509 dirmngr."
	helpKill       = "KILLDIRMNGR\n\nStop the daemon after this session ends. Only for the daemon's user\nand root."
	helpReload     = "RELOADDIRMNGR\n\nRe-read the configuration and flush the certificate caches, as on\nSIGHUP. Only for the daemon's user and root. A configuration that\ncannot be read is refused with Configuration error and the previous\none stays in effect."
	helpFlushCRLs  = "FLUSHCRLS\n\nRemove all cached CRLs. Only for the daemon's user and root."
)

// commands returns the command table in GnuPG's registration order (which
// is also the HELP order).
func (s *Server) commands() []assuan.Command {
	ni := s.handle(s.notImplemented)
	cmds := []assuan.Command{
		{Name: "DNS_CERT", Help: helpDNSCert, Handler: ni},
		{Name: "WKD_GET", Help: helpWKDGet, Handler: ni},
		{Name: "LDAPSERVER", Help: helpLDAPServer, Handler: s.handle(s.cmdLDAPServer), NoLogArgs: true}, // carries passwords
		{Name: "ISVALID", Help: helpISValid, Handler: s.handle(s.cmdISValid)},
		{Name: "CHECKCRL", Help: helpCheckCRL, Handler: s.handle(s.cmdCheckCRL)},
		{Name: "CHECKOCSP", Help: helpCheckOCSP, Handler: s.handle(s.cmdCheckOCSP)},
		{Name: "LOOKUP", Help: helpLookup, Handler: s.handle(s.cmdLookup)},
		{Name: "LOADCRL", Help: helpLoadCRL, Handler: s.handle(s.cmdLoadCRL)},
		{Name: "LISTCRLS", Help: helpListCRLs, Handler: s.handle(s.cmdListCRLs)},
		{Name: "CACHECERT", Help: helpCacheCert, Handler: s.handle(s.cmdCacheCert)},
		{Name: "VALIDATE", Help: helpValidate, Handler: s.handle(s.cmdValidate)},
		{Name: "KEYSERVER", Help: helpKeyserver, Handler: ni},
		{Name: "KS_SEARCH", Help: helpKSSearch, Handler: ni},
		{Name: "KS_GET", Help: helpKSGet, Handler: ni},
		{Name: "KS_FETCH", Help: helpKSFetch, Handler: ni},
		{Name: "KS_PUT", Help: helpKSPut, Handler: ni},
		{Name: "GETINFO", Help: helpGetInfo, Handler: s.handle(s.cmdGetInfo)},
		{Name: "LOADSWDB", Help: helpLoadSWDB, Handler: ni},
		{Name: "KILLDIRMNGR", Help: helpKill, Handler: s.handle(s.cmdKill)},
		{Name: "RELOADDIRMNGR", Help: helpReload, Handler: s.handle(s.cmdReload)},
		{Name: "FLUSHCRLS", Help: helpFlushCRLs, Handler: s.handle(s.cmdFlushCRLs)},
	}
	return cmds
}

// cmd is one command being handled: its session and the services in
// effect when it arrived, used throughout.
type cmd struct {
	as  *assuan.Session
	st  *session
	set *services.Set
}

// handler handles one command.
type handler func(c *cmd, args string) error

// epoch anchors the busy-time clock: time.Since(epoch) reads only the
// monotonic clock, where time.Now reads the wall clock as well (two clock
// reads; the clock reads together were 9% of an all-valid ISVALID's
// handler time in a perf profile of the daemon).
var epoch = time.Now()

// handle adapts a handler: it takes the current services for the whole
// command and maintains the request, error and busy-time counters.
func (s *Server) handle(h handler) assuan.HandlerFunc {
	return func(as *assuan.Session, args string) error {
		s.stats.requests.Add(1)
		start := time.Since(epoch)
		// The session's one cmd, reused: handlers run one at a time per
		// session and keep no reference to it.
		st := state(as)
		c := &st.cmd
		*c = cmd{as: as, st: st, set: s.sets.Current()}
		err := h(c, args)
		*c = cmd{} // no old services.Set kept alive by an idle session
		s.stats.busy.Add(int64(time.Since(epoch) - start))
		// A revoked certificate is an answer, not an error.
		if err != nil && gpgerr.CodeOf(err) != gpgerr.ErrCertRevoked {
			s.stats.errors.Add(1)
		}
		return err
	}
}

func (s *Server) notImplemented(*cmd, string) error { return gpgerr.ErrNotImplemented }

// option handles OPTION name=value after libassuan's pre-parsing.
func (s *Server) option(as *assuan.Session, name, value string) error {
	st := state(as)
	switch name {
	case "force-crl-refresh":
		st.forceCRLRefresh = atoi(value) != 0
	case "audit-events":
		st.auditEvents = atoi(value) != 0
	case "http-proxy":
		st.httpProxySet = true
		st.httpProxy = value
		if value == "none" {
			st.httpProxy = ""
		}
	case "honor-keyserver-url-used":
		// Only meaningful in Tor mode, which this daemon never enters.
	case "http-crl":
		st.httpCRL = atoi(value) != 0
	default:
		return gpgerr.ErrUnknownOption
	}
	return nil
}

// atoi mimics C's atoi: leading digits, 0 when there are none.
func atoi(s string) int {
	s = strings.TrimSpace(s)
	end := 0
	if end < len(s) && (s[end] == '-' || s[end] == '+') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

// reset handles RESET: the session's LDAP servers are dropped.
func (s *Server) reset(as *assuan.Session) error {
	state(as).ldapServers = nil
	return nil
}

func (s *Server) cmdGetInfo(c *cmd, args string) error {
	as := c.as
	switch args {
	case "version":
		return as.Data([]byte(Version))
	case "pid":
		return as.Data([]byte(strconv.Itoa(os.Getpid())))
	case "socket_name":
		return as.Data([]byte(s.env.SocketPath))
	case "session_id":
		return as.Data([]byte(strconv.FormatUint(as.ID, 10)))
	case "tor":
		return gpgerr.NewError(gpgerr.ErrFalse, "Tor mode is NOT enabled")
	case "dnsinfo":
		as.SetOKText("- Forced use of System resolver (w/o Tor support)")
		return nil
	case "workqueue":
		return as.Status("#", "wq: number of entries: 0")
	case "stats":
		st := s.Stats()
		out := fmt.Sprintf("uptime %d\nsessions_active %d\nsessions_total %d\nrequests %d\nerrors %d\nbusy_us %d\n",
			int64(st.Uptime.Seconds()), st.SessionsActive, st.SessionsTotal, st.Requests, st.Errors, st.Busy.Microseconds())
		out += fmt.Sprintf("crls_cached %d\n", len(c.set.Cache.List()))
		req, hits := c.set.OCSP.Stats()
		out += fmt.Sprintf("ocsp_requests %d\nocsp_cache_hits %d\n", req, hits)
		return as.Data([]byte(out))
	}
	if rest, ok := strings.CutPrefix(args, "getenv"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		name := strings.TrimLeft(rest, " \t")
		if name == "" {
			return gpgerr.ErrMissingValue
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			return gpgerr.NewError(gpgerr.ErrNotFound, "No such envvar")
		}
		return as.Data([]byte(v))
	}
	return gpgerr.NewError(gpgerr.ErrAssParameter, "unknown value for WHAT")
}

func (s *Server) cmdKill(c *cmd, _ string) error {
	as := c.as
	if !allowedControl(as) {
		return gpgerr.ErrForbidden
	}
	s.log.Info("KILLDIRMNGR received - shutting down", "session", as.ID)
	as.CloseAfterReply()
	if s.ctl != nil {
		s.ctl.Shutdown()
	}
	return nil
}

func (s *Server) cmdReload(c *cmd, _ string) error {
	if !allowedControl(c.as) {
		return gpgerr.ErrForbidden
	}
	if s.ctl == nil {
		return nil
	}
	// GnuPG answers OK whatever it could read; we keep the previous
	// configuration and say why (gpgconf --reload shows it).
	if err := s.ctl.Reload(); err != nil {
		return &gpgerr.Error{Code: gpgerr.ErrConfiguration, Detail: err.Error(), Err: err}
	}
	return nil
}

func (s *Server) cmdLDAPServer(c *cmd, args string) error {
	as, st := c.as, c.st
	clear := hasOption(args, "--clear")
	line := strings.TrimLeft(skipOptions(args), " \t")
	if clear {
		st.ldapServers = nil
		if line == "" {
			return nil
		}
	}
	if line == "" {
		for _, srv := range s.ldapServers(c) {
			if err := as.Status("LDAPSERVER", srv.Listing()); err != nil {
				return err
			}
		}
		return nil
	}
	if strings.HasPrefix(line, "ldap:") && !strings.HasPrefix(line, "ldap://") {
		line = line[len("ldap:"):]
	}
	srv, err := ldap.ParseServerSpec(line)
	if err != nil {
		s.log.Info("ldap: error in server spec", "err", err)
		return gpgerr.Wrap(gpgerr.ErrInvArg, err)
	}
	for _, w := range srv.Warnings {
		s.log.Info("ldap: " + w)
	}
	st.ldapServers = append(st.ldapServers, srv)
	return nil
}

// ldapServers returns the session's servers followed by the configured ones.
func (s *Server) ldapServers(c *cmd) []*ldap.Server {
	list := append([]*ldap.Server(nil), c.st.ldapServers...)
	for _, spec := range c.set.Opts.LDAPServer {
		srv, err := ldap.ParseServerSpec(strings.TrimPrefix(spec, "ldap:"))
		if err != nil {
			s.log.Warn("ignoring invalid --ldapserver", "err", err)
			continue
		}
		list = append(list, srv)
	}
	return list
}
