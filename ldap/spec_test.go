package ldap

import (
	"strings"
	"testing"
)

func TestParseServerSpec(t *testing.T) {
	tests := []struct {
		spec    string
		listing string
		err     string
	}{
		// Golden from GnuPG 2.2.40 (transcript 10-gca-session1.out).
		{"ldap.example.org:389:::dc=example,dc=org", "ldap:ldap.example.org:389:::dc=example,dc=org:none:", ""},
		{"127.0.0.1:1:::dc=example,dc=org", "ldap:127.0.0.1:1:::dc=example,dc=org:none:", ""},
		{"host", "ldap:host:::::none:", ""},
		{" host : 636 : cn=admin : secret : o=x : ldaptls,ntds ", "ldap:host:636:cn=admin:*****:o=x:ldaptls,ntds:", ""},
		{"h:389:u:pw-Q7:b:starttls:extra:fields", "ldap:h:389:u:*****:b:starttls:", ""},
		{"h:389:u:pw-Q7:b:starttls,plain", "ldap:h:389:u:*****:b:none:", ""},
		{"h:notaport", "", "invalid port"},
		{"h:70000", "", "invalid port"},
		{"h:389", "ldap:h:389::::none:", ""},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := ParseServerSpec(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Listing(); got != tc.listing {
				t.Fatalf("listing %q, want %q", got, tc.listing)
			}
			if strings.Contains(s.String(), "secret") || (s.Password != "" && strings.Contains(s.Listing(), s.Password)) {
				t.Fatal("password leaked")
			}
		})
	}
}

func TestParseServerSpecUnknownFlag(t *testing.T) {
	s, err := ParseServerSpec("h:1:::b:bogus")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "bogus") {
		t.Fatalf("warnings %q", s.Warnings)
	}
}
