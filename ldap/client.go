package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// ParseServerList reads an ldapservers file: one host:port:user:pass:base
// [:flags] specification per line, '#' comments and blank lines ignored.
func ParseServerList(r io.Reader, name string) ([]*Server, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 8192)
	var out []*Server
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s, err := ParseServerSpec(line)
		if err != nil {
			return out, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// ReadServerList reads an ldapservers file; a missing file is no servers.
func ReadServerList(path string) ([]*Server, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldap: %w", err)
	}
	defer f.Close()
	return ParseServerList(f, path)
}

// Options control connections. Options are shared by all sessions; only
// AddServerFromURL changes them after creation.
type Options struct {
	mu        sync.Mutex
	Timeout   time.Duration // every operation; default 15 s (--ldaptimeout)
	Proxy     string        // --ldap-proxy host[:port]: replaces the URL's host
	OnlyProxy bool          // --only-ldap-proxy: never fall back to other hosts
	Servers   []*Server     // configured servers (host-less URLs, LOOKUP)
	Disabled  bool          // --disable-ldap
	// RootCAs verify ldaps/StartTLS servers (system roots plus
	// trusted-certs); nil = system roots.
	RootCAs *x509.CertPool
}

// ServersFor returns the session's servers (LDAPSERVER) followed by the
// configured ones.
func (o *Options) ServersFor(session []*Server) []*Server {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append(append([]*Server(nil), session...), o.Servers...)
}

// AddServerFromURL remembers the host of an ldap:// URL as a server
// (--add-servers), unless it is already known.
func (o *Options) AddServerFromURL(raw string) {
	u, err := ParseURL(raw)
	if err != nil || u.Host == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.Servers {
		if s.Host == u.Host && (s.Port == u.Port || u.Port == 0) {
			return
		}
	}
	o.Servers = append(o.Servers, &Server{Host: u.Host, Port: u.Port, LDAPOverTLS: u.TLS})
}

func (o *Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 15 * time.Second
	}
	return o.Timeout
}

// errDisabled is returned when LDAP is switched off.
var errDisabled = fmt.Errorf("ldap: disabled: %w", gpgerr.ErrNotSupported)

// dial connects and binds to srv.
func (o *Options) dial(ctx context.Context, srv *Server) (*goldap.Conn, error) {
	port := srv.Port
	scheme := "ldap"
	if srv.LDAPOverTLS {
		scheme = "ldaps"
	}
	if port == 0 {
		port = 389
		if srv.LDAPOverTLS {
			port = 636
		}
	}
	d := &net.Dialer{Timeout: o.timeout()}
	addr := scheme + "://" + net.JoinHostPort(srv.Host, strconv.Itoa(port))
	tlsConf := &tls.Config{ServerName: srv.Host, RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	conn, err := goldap.DialURL(addr, goldap.DialWithDialer(d), goldap.DialWithTLSConfig(tlsConf))
	if err != nil {
		// GnuPG answers No data; the log says why, once, in plain words.
		return nil, noData("can't connect to '" + addr + "': " + fetch.Cause(err))
	}
	conn.SetTimeout(o.timeout())
	if srv.StartTLS && !srv.LDAPOverTLS {
		if err := conn.StartTLS(tlsConf); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: StartTLS with %s: %w", addr, gpgerr.Wrap(gpgerr.ErrNoData, err))
		}
	}
	if srv.User != "" {
		if err := conn.Bind(srv.User, srv.Password); err != nil {
			conn.Close()
			return nil, fmt.Errorf("ldap: bind to %s as %s failed: %w", addr, srv.User, gpgerr.Wrap(gpgerr.ErrNoData, err))
		}
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	return conn, nil
}

// binaryNames lists an attribute with and without ";binary".
func binaryNames(attrs []string) []string {
	var out []string
	for _, a := range attrs {
		base := strings.TrimSuffix(a, ";binary")
		out = append(out, base+";binary", base)
	}
	return out
}

// FetchURL reads the attribute values named by an LDAP URL (a CRL
// distribution point, a caIssuers URL). A host-less URL is tried against
// the session's servers, then the configured ones; --ldap-proxy replaces
// the host.
func (o *Options) FetchURL(ctx context.Context, session []*Server, raw string) ([]byte, error) {
	if o.Disabled {
		return nil, errDisabled
	}
	u, err := ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, gpgerr.ErrInvURI)
	}
	var targets []*Server
	switch {
	case o.Proxy != "":
		p, err := ParseServerSpec(o.Proxy)
		if err != nil {
			return nil, fmt.Errorf("ldap: --ldap-proxy: %w", err)
		}
		targets = append(targets, p)
		if !o.OnlyProxy && u.Host != "" {
			targets = append(targets, &Server{Host: u.Host, Port: u.Port, LDAPOverTLS: u.TLS})
		}
	case u.Host != "":
		targets = append(targets, &Server{Host: u.Host, Port: u.Port, LDAPOverTLS: u.TLS})
	default:
		targets = o.ServersFor(session)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("ldap: no server for the host-less URL %q: %w", raw, gpgerr.ErrConfiguration)
	}
	attrs := u.Attributes
	if len(attrs) == 0 {
		attrs = []string{"certificateRevocationList"}
	}
	var last error
	for _, srv := range targets {
		data, err := o.fetchOne(ctx, srv, u, attrs)
		if err == nil {
			return data, nil
		}
		last = err
	}
	return nil, last
}

func (o *Options) fetchOne(ctx context.Context, srv *Server, u *URL, attrs []string) ([]byte, error) {
	conn, err := o.dial(ctx, srv)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	names := binaryNames(attrs)
	req := goldap.NewSearchRequest(u.DN, u.Scope, goldap.NeverDerefAliases, 1, int(o.timeout().Seconds()), false, u.Filter, names, nil)
	// Asynchronous search with a one-message buffer: the first entry that
	// has the attribute ends the search, so a server that ignores the size
	// limit and sends entry after entry costs one reply, not all of them.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := conn.SearchAsync(sctx, req, 1)
	for res.Next() {
		e := res.Entry()
		if e == nil {
			continue
		}
		for _, n := range names {
			if v := e.GetRawAttributeValues(n); len(v) > 0 && len(v[0]) > 0 {
				return v[0], nil
			}
		}
	}
	if err := res.Err(); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return nil, fmt.Errorf("ldap: search %q on %s: %w", u.DN, srv.Host, mapError(err))
	}
	return nil, fmt.Errorf("ldap: nothing found at %q on %s: %w", u.DN, srv.Host, gpgerr.ErrNoData)
}

// replyLimit makes LimitReplySize take effect once per process: the limit
// is a process-wide setting of the BER decoder, read by every connection's
// reader, so changing it later (on a reload) would race with them.
var replyLimit sync.Once

// LimitReplySize bounds one LDAP reply message (one entry with all its
// values) to n bytes; a larger one fails the search instead of being read
// into memory. The first call wins; later calls do nothing.
func LimitReplySize(n int64) {
	replyLimit.Do(func() {
		if n > 0 {
			ber.MaxPacketLengthBytes = n
		}
	})
}

// noData is an LDAP failure answered with No data (as GnuPG's dirmngr
// does) whose message is msg alone.
type noData string

func (e noData) Error() string { return "ldap: " + string(e) }
func (e noData) Unwrap() error { return gpgerr.ErrNoData }

func mapError(err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && le.ResultCode == goldap.ErrorNetwork {
		return gpgerr.Wrap(gpgerr.ErrTimeout, err)
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return gpgerr.Wrap(gpgerr.ErrNoData, err)
	}
	return gpgerr.Wrap(gpgerr.ErrNoData, err)
}

// Filter turns a LOOKUP pattern into a search as GnuPG's dirmngr does:
// "<mail>" → (mail=…); "/DN" and "#/DN" → a base search at DN; anything
// else (an optional leading '*' dropped) → a substring match on sn, cn
// and mail. Values are escaped per RFC 4515, so a pattern cannot inject
// filter syntax. base is "" for "search below the server's base".
func Filter(pattern string) (base, filter string, scope int, err error) {
	switch {
	case strings.HasPrefix(pattern, "<"):
		m := strings.TrimSuffix(pattern[1:], ">")
		return "", "(mail=" + goldap.EscapeFilter(m) + ")", ScopeSub, nil
	case strings.HasPrefix(pattern, "#/"):
		return pattern[2:], "(objectClass=*)", ScopeBase, nil
	case strings.HasPrefix(pattern, "/"):
		if len(pattern) == 1 {
			return "", "", 0, fmt.Errorf("ldap: empty DN pattern: %w", gpgerr.ErrInvName)
		}
		return pattern[1:], "(objectClass=*)", ScopeBase, nil
	case strings.HasPrefix(pattern, "#"):
		return "", "", 0, fmt.Errorf("ldap: serial number patterns are not supported: %w", gpgerr.ErrInvName)
	}
	p := strings.TrimPrefix(pattern, "*")
	if p == "" {
		return "", "", 0, fmt.Errorf("ldap: empty pattern: %w", gpgerr.ErrInvName)
	}
	e := goldap.EscapeFilter(p)
	return "", "(|(sn=*" + e + "*)(|(cn=*" + e + "*)(mail=*" + e + "*)))", ScopeSub, nil
}

// Certificates are the attributes LOOKUP returns.
var certAttrs = []string{"userCertificate", "cACertificate"}

// Lookup searches the session's servers, then the configured ones, for
// pattern and calls emit with each certificate (DER) until max results
// (0 = no limit); it reports whether the limit cut the results.
func (o *Options) Lookup(ctx context.Context, session []*Server, pattern string, max int, emit func([]byte) error) (truncated bool, err error) {
	if o.Disabled {
		return false, errDisabled
	}
	base, filter, scope, err := Filter(pattern)
	if err != nil {
		return false, err
	}
	n := 0
	var last error
	found := false
	for _, srv := range o.ServersFor(session) {
		b := base
		if b == "" {
			b = srv.Base
		}
		conn, err := o.dial(ctx, srv)
		if err != nil {
			last = err
			continue
		}
		limit := 0
		if max > 0 {
			limit = max - n + 1
		}
		req := goldap.NewSearchRequest(b, scope, goldap.NeverDerefAliases, limit, int(o.timeout().Seconds()), false, filter, binaryNames(certAttrs), nil)
		res, err := conn.Search(req)
		conn.Close()
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
			last = fmt.Errorf("ldap: search on %s: %w", srv.Host, mapError(err))
			continue
		}
		for _, e := range res.Entries {
			for _, name := range binaryNames(certAttrs) {
				for _, v := range e.GetRawAttributeValues(name) {
					if len(v) == 0 {
						continue
					}
					if max > 0 && n >= max {
						return true, nil
					}
					if err := emit(v); err != nil {
						return false, err
					}
					n++
					found = true
				}
			}
		}
	}
	if !found && last != nil {
		return false, last
	}
	if !found && len(o.ServersFor(session)) > 0 {
		return false, fmt.Errorf("ldap: no certificate for %q: %w", pattern, gpgerr.ErrNoData)
	}
	return false, nil
}

// OptionsFrom builds the LDAP options from dirmngr's: --ldapserver specs
// and the --ldapserverlist-file (default <homedir>/dirmngr_ldapservers.conf).
func OptionsFrom(disable bool, timeoutSec int, proxy string, onlyProxy bool, specs []string, listFile, homedir string) (*Options, []string, error) {
	o := &Options{Disabled: disable, Timeout: time.Duration(timeoutSec) * time.Second, Proxy: proxy, OnlyProxy: onlyProxy}
	var warnings []string
	for _, s := range specs {
		srv, err := ParseServerSpec(s)
		if err != nil {
			return nil, warnings, fmt.Errorf("ldapserver %q: %w", s, err)
		}
		warnings = append(warnings, srv.Warnings...)
		o.Servers = append(o.Servers, srv)
	}
	if listFile == "" {
		listFile = homedir + "/dirmngr_ldapservers.conf"
	}
	list, err := ReadServerList(listFile)
	if err != nil {
		return nil, warnings, err
	}
	o.Servers = append(o.Servers, list...)
	return o, warnings, nil
}
