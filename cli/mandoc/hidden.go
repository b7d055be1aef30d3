package mandoc

// HiddenDocs documents the options that --help does not list (GnuPG hides
// them too) for the man page and dirmngr.conf.example. Every such option
// that dirmngr.conf accepts needs an entry (TestHiddenOptionsDocumented);
// options that are parsed but have no effect here say so.
var HiddenDocs = map[string]string{
	"steal-socket":              "no effect: a live socket is never taken over (a second daemon exits)",
	"no-greeting":               "no effect (no greeting is printed)",
	"debug":                     "debug flags as GnuPG's (numbers or names); any debug flag enables debug output",
	"debug-all":                 "enable all debug output",
	"gnutls-debug":              "no effect (Go's TLS stack has no debug levels)",
	"tls-debug":                 "no effect (Go's TLS stack has no debug levels)",
	"debug-wait":                "wait N seconds after start so that a debugger can attach",
	"listen-backlog":            "accepted; the system's maximum listen backlog is used",
	"faked-system-time":         "pretend the time is EPOCH (seconds since 1970 or YYYYMMDDTHHMMSS; a trailing ! freezes the clock) for CRL and OCSP checks",
	"disable-check-own-socket":  "do not stop when the socket file is removed or replaced",
	"ignore-cert":               "no effect yet (GnuPG: ignore the certificate with this fingerprint)",
	"ignore-cert-extension":     "treat the critical certificate extension OID as known",
	"no-use-tor":                "do not use Tor (the default: Tor is not supported)",
	"disable-ipv4":              "no effect yet (GnuPG: do not use IPv4)",
	"disable-ipv6":              "no effect yet (GnuPG: do not use IPv6)",
	"standard-resolver":         "no effect (the system's resolver is always used)",
	"recursive-resolver":        "no effect (the system's resolver is always used)",
	"resolver-timeout":          "no effect (the system's resolver timeouts apply)",
	"nameserver":                "no effect (the system's resolver is always used)",
	"connect-timeout":           "give up connecting to a server after N seconds",
	"connect-quick-timeout":     "no effect yet (GnuPG: the connect timeout of quick checks)",
	"ldap-wrapper-program":      "no effect (LDAP is built in; no wrapper process is used)",
	"ocsp-max-clock-skew":       "tolerate N seconds of clock difference to the OCSP responder",
	"ocsp-max-period":           "consider an OCSP answer valid for at most N seconds after its thisUpdate",
	"ocsp-current-period":       "consider an OCSP answer valid for N seconds after its nextUpdate",
	"socket-name":               "listen on (and report) the socket NAME instead of GnuPG's",
	"debug-cache-expired-certs": "no effect yet (GnuPG: keep expired certificates in the cache)",
	"batch":                     "no effect (dirmngr never asks questions)",
	"http-wrapper-program":      "no effect (HTTP is built in; no wrapper process is used)",
	"ready-timeout":             "--daemon: wait at most N seconds for the detached daemon to report that it is ready",
}
