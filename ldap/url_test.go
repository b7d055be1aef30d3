package ldap

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		in   string
		want URL
		err  bool
	}{
		{"ldap://ldap.example.org/cn=CA,dc=example,dc=org?certificateRevocationList;binary", URL{Host: "ldap.example.org", DN: "cn=CA,dc=example,dc=org", Attributes: []string{"certificateRevocationList;binary"}, Filter: "(objectClass=*)"}, false},
		{"ldaps://h:636/o=X?cACertificate,userCertificate?sub?(cn=a)", URL{TLS: true, Host: "h", Port: 636, DN: "o=X", Attributes: []string{"cACertificate", "userCertificate"}, Scope: ScopeSub, Filter: "(cn=a)"}, false},
		{"ldap:///CN=Root%20CA,CN=CDP,DC=corp?certificateRevocationList?base?objectClass=cRLDistributionPoint", URL{DN: "CN=Root CA,CN=CDP,DC=corp", Attributes: []string{"certificateRevocationList"}, Filter: "(objectClass=cRLDistributionPoint)"}, false},
		{"LDAP://[::1]:3890/dc=x", URL{Host: "::1", Port: 3890, DN: "dc=x", Filter: "(objectClass=*)"}, false},
		{"ldap://h/dc=x????!bindname=x", URL{}, true},
		{"ldap://h:99999/", URL{}, true},
		{"ldap://h/dc=x??wide", URL{}, true},
		{"http://h/", URL{}, true},
		{"ldap://h/%zz", URL{}, true},
	}
	for _, c := range cases {
		got, err := ParseURL(c.in)
		if c.err {
			if err == nil {
				t.Errorf("%s: no error", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.in, *got, c.want)
		}
	}
}

func TestFilter(t *testing.T) {
	cases := []struct{ in, base, filter string }{
		{"<alice@example.org>", "", "(mail=alice@example.org)"},
		{"/cn=a,dc=b", "cn=a,dc=b", "(objectClass=*)"},
		{"#/cn=CA", "cn=CA", "(objectClass=*)"},
		{"*)(uid=*", "", `(|(sn=*\29\28uid=\2a*)(|(cn=*\29\28uid=\2a*)(mail=*\29\28uid=\2a*)))`},
		{"a\x00b", "", `(|(sn=*a\00b*)(|(cn=*a\00b*)(mail=*a\00b*)))`},
	}
	for _, c := range cases {
		base, filter, _, err := Filter(c.in)
		if err != nil || base != c.base || filter != c.filter {
			t.Errorf("%q: %q %q %v", c.in, base, filter, err)
		}
	}
	for _, bad := range []string{"", "/", "*", "#12/cn=x"} {
		if _, _, _, err := Filter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseServerList(t *testing.T) {
	in := "# servers\n\nldap.example.org:389::::\n  h2:636:cn=u:pw:dc=x:ldaptls\n"
	list, err := ParseServerList(strings.NewReader(in), "test")
	if err != nil || len(list) != 2 || list[1].Password != "pw" || !list[1].LDAPOverTLS || list[0].Host != "ldap.example.org" {
		t.Fatalf("%+v %v", list, err)
	}
	if strings.Contains(list[1].Listing(), "pw") {
		t.Fatal("password in listing")
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"ldap://h:389/dc=x?a,b?sub?(cn=*)?ext", "ldap:///cn=a%20b", "ldaps://[::1]/", "ldap://h/??one?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURL(s)
		if err != nil {
			return
		}
		if u.Port < 0 || u.Port > 65535 || u.Scope < 0 || u.Scope > 2 || !strings.HasPrefix(u.Filter, "(") {
			t.Fatalf("bad result %+v", u)
		}
	})
}

func FuzzParseServerList(f *testing.F) {
	f.Add("h:389:u:p:dc=x:starttls\n# c\n")
	f.Add("::::::\n")
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseServerList(strings.NewReader(s), "fuzz")
		if err != nil {
			return
		}
		for _, srv := range list {
			if srv.Password != "" && strings.Contains(srv.Listing(), srv.Password) && !strings.Contains(srv.Listing(), "*****") {
				t.Fatalf("password listed: %q", srv.Listing())
			}
		}
	})
}
