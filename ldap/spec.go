// Package ldap holds dirmngr's LDAP support: the server specifications of
// dirmngr.conf / dirmngr_ldapservers.conf / the LDAPSERVER command, and (in
// later work) CRL and certificate retrieval built on github.com/go-ldap/ldap/v3.
package ldap

import (
	"fmt"
	"strconv"
	"strings"
)

// Server is one configured LDAP server, as given by a
// `host:port:user:pass:base:flags` specification.
type Server struct {
	Host        string
	Port        int // 0 = not given (the scheme's default port)
	User        string
	Password    string // never logged or listed
	Base        string
	StartTLS    bool
	LDAPOverTLS bool
	NTDS        bool
	AreconlyKey bool // the "areconly" flag (A-record lookup only)
	// Warnings collects ignored unknown flags, for the caller to log.
	Warnings []string
}

// ParseServerSpec parses a server specification of the form
// host:port:user:pass:base:flags (fields may be empty or missing, extra
// fields are ignored, blanks around fields are trimmed). Flags are a comma
// separated list of starttls, ldaptls, plain, ntds and areconly; unknown flags
// are ignored with a warning. As in GnuPG, a password needs a user field.
func ParseServerSpec(spec string) (*Server, error) {
	if len(spec) > 4096 {
		return nil, fmt.Errorf("ldap server spec too long (%d bytes)", len(spec))
	}
	s := &Server{}
	fields := strings.Split(spec, ":")
	userGiven := false
	for i, f := range fields {
		f = strings.TrimSpace(f)
		switch i {
		case 0:
			s.Host = f
		case 1:
			if f != "" {
				n, err := strconv.Atoi(f)
				if err != nil || n < 0 || n > 65535 {
					return nil, fmt.Errorf("ldap server spec: invalid port %q", f)
				}
				s.Port = n
			}
		case 2:
			s.User, userGiven = f, true
		case 3:
			if f != "" && !userGiven {
				return nil, fmt.Errorf("ldap server spec: password given without user")
			}
			s.Password = f
		case 4:
			s.Base = f
		case 5:
			for _, fl := range strings.Split(f, ",") {
				switch strings.ToLower(strings.TrimSpace(fl)) {
				case "":
				case "starttls":
					s.StartTLS, s.LDAPOverTLS = true, false
				case "ldaptls":
					s.StartTLS, s.LDAPOverTLS = false, true
				case "plain":
					s.StartTLS, s.LDAPOverTLS = false, false
				case "ntds":
					s.NTDS = true
				case "areconly":
					s.AreconlyKey = true
				default:
					s.Warnings = append(s.Warnings, fmt.Sprintf("unknown flag '%s' ignored", strings.TrimSpace(fl)))
				}
			}
		}
	}
	return s, nil
}

// Listing renders s as GnuPG's `S LDAPSERVER` status text:
// ldap:host:port:user:*****:base:none|starttls|ldaptls[,ntds]:
// The password is always masked.
func (s *Server) Listing() string {
	port := ""
	if s.Port != 0 {
		port = strconv.Itoa(s.Port)
	}
	pass := ""
	if s.Password != "" {
		pass = "*****"
	}
	mode := "none"
	switch {
	case s.StartTLS:
		mode = "starttls"
	case s.LDAPOverTLS:
		mode = "ldaptls"
	}
	ntds := ""
	if s.NTDS {
		ntds = ",ntds"
	}
	return "ldap:" + s.Host + ":" + port + ":" + s.User + ":" + pass + ":" + s.Base + ":" + mode + ntds + ":"
}

// String describes s for logs; the password is masked.
func (s *Server) String() string { return s.Listing() }
