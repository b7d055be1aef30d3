package server

import (
	"testing"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/ldap"
)

// TestRequestReused: a session's commands share one revocation.Request
// while its settings stay (no allocation per ISVALID); a changed setting
// makes a new one and leaves the old one as it was (a shared CRL download
// may still read it).
func TestRequestReused(t *testing.T) {
	as := assuan.NewSession(1, assuan.PeerCred{})
	c := &cmd{as: as, st: state(as)}
	srv, err := ldap.ParseServerSpec("ldap.example.org:389")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(st *session)
		check  func(t *testing.T, c *cmd)
	}{
		{"force-crl-refresh", func(st *session) { st.forceCRLRefresh = true }, func(t *testing.T, c *cmd) {
			if !c.request().ForceRefresh {
				t.Error("ForceRefresh not set")
			}
		}},
		{"http-proxy", func(st *session) { st.httpProxySet, st.httpProxy = true, "http://proxy:3128" }, func(t *testing.T, c *cmd) {
			if p := c.request().Proxy; p == nil || *p != "http://proxy:3128" {
				t.Errorf("Proxy %v", p)
			}
		}},
		{"http-proxy changed", func(st *session) { st.httpProxy = "" }, func(t *testing.T, c *cmd) {
			if p := c.request().Proxy; p == nil || *p != "" {
				t.Errorf("Proxy %v, want direct", p)
			}
		}},
		{"ldapserver added", func(st *session) { st.ldapServers = append(st.ldapServers, srv) }, func(t *testing.T, c *cmd) {
			if n := len(c.request().LDAPServers); n != 1 {
				t.Errorf("%d LDAP servers, want 1", n)
			}
		}},
		{"ldapserver --clear", func(st *session) { st.ldapServers = nil }, func(t *testing.T, c *cmd) {
			if n := len(c.request().LDAPServers); n != 0 {
				t.Errorf("%d LDAP servers, want 0", n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := c.request()
			if again := c.request(); again != old {
				t.Fatal("a new Request with the settings unchanged")
			}
			before := *old
			tc.change(c.st)
			if c.request() == old {
				t.Fatal("the old Request after a change of the settings")
			}
			tc.check(t, c)
			if old.ForceRefresh != before.ForceRefresh || old.Proxy != before.Proxy || len(old.LDAPServers) != len(before.LDAPServers) {
				t.Error("the old Request was changed")
			}
			if allocs := testing.AllocsPerRun(100, func() { c.request() }); allocs != 0 {
				t.Errorf("%v allocations per request", allocs)
			}
		})
	}
}
