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
		h, err := url.PathUnescape(hostport)
		if err != nil {
			return nil, fmt.Errorf("ldap: bad host in %q: %v", s, err)
		}
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			i := strings.Index(h, "]")
			if i < 0 {
				return nil, fmt.Errorf("ldap: bad IPv6 host in %q", s)
			}
			host, port = h[1:i], strings.TrimPrefix(h[i+1:], ":")
		} else if i := strings.LastIndex(h, ":"); i >= 0 {
			host, port = h[:i], h[i+1:]
		}
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("ldap: bad port in %q", s)
			}
			u.Port = p
		}
		u.Host = host
	}
	parts := strings.SplitN(path, "?", 5)
	dec := func(i int) (string, error) {
		if i >= len(parts) {
			return "", nil
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil {
			return "", fmt.Errorf("ldap: bad escape in %q: %v", s, err)
		}
		return v, nil
	}
	var err error
	if u.DN, err = dec(0); err != nil {
		return nil, err
	}
	if len(parts) > 1 && parts[1] != "" {
		for _, a := range strings.Split(parts[1], ",") {
			v, err := url.PathUnescape(a)
			if err != nil {
				return nil, fmt.Errorf("ldap: bad attribute in %q", s)
			}
			if v != "" {
				u.Attributes = append(u.Attributes, v)
			}
		}
	}
	scope, err := dec(2)
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(scope) {
	case "", "base":
		u.Scope = ScopeBase
	case "one":
		u.Scope = ScopeOne
	case "sub":
		u.Scope = ScopeSub
	default:
		return nil, fmt.Errorf("ldap: bad scope %q in %q", scope, s)
	}
	if u.Filter, err = dec(3); err != nil {
		return nil, err
	}
	if u.Filter == "" {
		u.Filter = "(objectClass=*)"
	} else if !strings.HasPrefix(u.Filter, "(") {
		u.Filter = "(" + u.Filter + ")"
	}
	if len(parts) > 4 && parts[4] != "" {
		for _, e := range strings.Split(parts[4], ",") {
			v, err := url.PathUnescape(e)
			if err != nil {
				return nil, fmt.Errorf("ldap: bad extension in %q", s)
			}
			if strings.HasPrefix(v, "!") {
				return nil, fmt.Errorf("ldap: unsupported critical extension %q in %q", v, s)
			}
			u.Extensions = append(u.Extensions, v)
		}
	}
	return &u, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}
