package ldap

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Scopes of an LDAP URL.
const (
	ScopeBase = 0
	ScopeOne  = 1
	ScopeSub  = 2
)

// URL is a parsed RFC 4516 LDAP URL:
// ldap[s]://host:port/dn?attributes?scope?filter?extensions.
type URL struct {
	TLS        bool   // ldaps
	Host       string // "" = host-less (use the configured servers)
	Port       int    // 0 = default
	DN         string
	Attributes []string
	Scope      int
	Filter     string
	Extensions []string
}

// maxURL bounds what ParseURL accepts.
const maxURL = 8192

// ParseURL parses an ldap:// or ldaps:// URL with percent-decoding of
// every part. Scope defaults to base, the filter to (objectClass=*).
// Critical extensions ("!name") are refused, as RFC 4516 requires for
// unsupported ones.
func ParseURL(s string) (*URL, error) {
	if len(s) > maxURL {
		return nil, fmt.Errorf("ldap: URL too long (%d bytes)", len(s))
	}
	var u URL
	rest, ok := cutPrefixFold(s, "ldap://")
	if !ok {
		if rest, ok = cutPrefixFold(s, "ldaps://"); !ok {
			return nil, fmt.Errorf("ldap: %q is not an ldap:// URL", s)
		}
		u.TLS = true
	}
	hostport, path, _ := strings.Cut(rest, "/")
	if hostport != "" {
		if err := u.parseHostPort(hostport, s); err != nil {
			return nil, err
		}
	}
	if err := u.parseQuery(path, s); err != nil {
		return nil, err
	}
	return &u, nil
}

// parseHostPort sets Host and Port from the URL's host[:port] part.
func (u *URL) parseHostPort(hostport, s string) error {
	h, err := url.PathUnescape(hostport)
	if err != nil {
		return fmt.Errorf("ldap: bad host in %q: %v", s, err)
	}
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		i := strings.Index(h, "]")
		if i < 0 {
			return fmt.Errorf("ldap: bad IPv6 host in %q", s)
		}
		host, port = h[1:i], strings.TrimPrefix(h[i+1:], ":")
	} else if i := strings.LastIndex(h, ":"); i >= 0 {
		host, port = h[:i], h[i+1:]
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("ldap: bad port in %q", s)
		}
		u.Port = p
	}
	u.Host = host
	return nil
}

// parseQuery sets DN, attributes, scope, filter and extensions from the
// part after the host: dn?attributes?scope?filter?extensions.
func (u *URL) parseQuery(path, s string) error {
	parts := strings.SplitN(path, "?", 5)
	field := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	var err error
	if u.DN, err = unescapeOne(field(0), "escape", s); err != nil {
		return err
	}
	if u.Attributes, err = unescapeList(field(1), "attribute", s); err != nil {
		return err
	}
	scope, err := unescapeOne(field(2), "escape", s)
	if err != nil {
		return err
	}
	switch strings.ToLower(scope) {
	case "", "base":
		u.Scope = ScopeBase
	case "one":
		u.Scope = ScopeOne
	case "sub":
		u.Scope = ScopeSub
	default:
		return fmt.Errorf("ldap: bad scope %q in %q", scope, s)
	}
	if u.Filter, err = unescapeOne(field(3), "escape", s); err != nil {
		return err
	}
	if u.Filter == "" {
		u.Filter = "(objectClass=*)"
	} else if !strings.HasPrefix(u.Filter, "(") {
		u.Filter = "(" + u.Filter + ")"
	}
	if u.Extensions, err = unescapeList(field(4), "extension", s); err != nil {
		return err
	}
	for _, e := range u.Extensions {
		if strings.HasPrefix(e, "!") {
			return fmt.Errorf("ldap: unsupported critical extension %q in %q", e, s)
		}
	}
	return nil
}

// unescapeOne percent-decodes one field of URL s.
func unescapeOne(v, what, s string) (string, error) {
	d, err := url.PathUnescape(v)
	if err != nil {
		if what == "escape" {
			return "", fmt.Errorf("ldap: bad escape in %q: %v", s, err)
		}
		return "", fmt.Errorf("ldap: bad %s in %q", what, s)
	}
	return d, nil
}

// unescapeList percent-decodes a comma-separated field of URL s; empty
// items are dropped.
func unescapeList(v, what, s string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		d, err := unescapeOne(item, what, s)
		if err != nil {
			return nil, err
		}
		if d != "" {
			out = append(out, d)
		}
	}
	return out, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
