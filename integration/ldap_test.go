package integration

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// slapdServer is a real OpenLDAP slapd on 127.0.0.1 with a generated
// directory; log holds its "stats" log (one line per search, with the
// filter as received).
type slapdServer struct {
	addr string
	log  *bytes.Buffer
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var logMu sync.Mutex

// startSlapdWith writes a slapd.conf, loads ldif with slapadd and starts
// slapd listening on addr.
func startSlapdWith(t *testing.T, ldif, addr string) *slapdServer {
	t.Helper()
	return startSlapdTLS(t, ldif, addr, nil)
}

// startSlapdTLS is startSlapdWith with a TLS server certificate (StartTLS).
func startSlapdTLS(t *testing.T, ldif, addr string, tlsCert *testpki.Cert) *slapdServer {
	t.Helper()
	slapd := requireTool(t, "/usr/sbin/slapd")
	slapadd := requireTool(t, "/usr/sbin/slapadd")
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "db"), 0o700)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
%[2]s
database mdb
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw secret
directory %[1]s/db
`, dir, tlsLines(dir, tlsCert))
	confFile := testpki.WriteFile(dir, "slapd.conf", []byte(conf))
	ldifFile := testpki.WriteFile(dir, "data.ldif", []byte(ldif))
	if out, err := exec.Command(slapadd, "-f", confFile, "-l", ldifFile).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	s := &slapdServer{addr: addr, log: &bytes.Buffer{}}
	cmd := exec.Command(slapd, "-f", confFile, "-h", "ldap://"+s.addr+"/", "-d", "256")
	cmd.Stderr = &syncWriter{w: s.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	waitFor(t, 10*time.Second, func() bool {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "slapd to listen")
	return s
}

type syncWriter struct {
	w *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.w.Write(p)
}

func (s *slapdServer) logText() string {
	logMu.Lock()
	defer logMu.Unlock()
	return s.log.String()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestLDAP puts a CA (with its CRL) and user certificates into slapd and
// checks ldap:// distribution points (with host and host-less), LOOKUP by
// mail and name through LDAPSERVER, max-replies, filter escaping as slapd
// receives it, and a black-hole server's timeout.
func TestLDAP(t *testing.T) {
	daemon := bin(t, "dirmngr")
	client := bin(t, "dirmngr-client")
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("LDAP Root CA", "Example", "DE")})
	now := time.Now()
	// The distribution points name slapd's address, so pick the port
	// first, build the PKI and the directory, then start slapd on it.
	mk := func(addr string) (alice, bob, carol *testpki.Cert, ldif string) {
		dp := "ldap://" + addr + "/cn=LDAP%20Root%20CA,dc=example,dc=org?certificateRevocationList;binary"
		hostless := "ldap:///cn=LDAP%20Root%20CA,dc=example,dc=org?certificateRevocationList;binary"
		alice = root.Issue(testpki.Template{Subject: testpki.Name("alice", "Example", "DE"), Serial: big.NewInt(0x6001), CRLURLs: []string{dp}, Email: []string{"alice@example.org"}})
		bob = root.Issue(testpki.Template{Subject: testpki.Name("bob", "Example", "DE"), Serial: big.NewInt(0x6002), CRLURLs: []string{dp}, Email: []string{"bob@example.org"}})
		carol = root.Issue(testpki.Template{Subject: testpki.Name("carol", "Example", "DE"), Serial: big.NewInt(0x6003), CRLURLs: []string{hostless}})
		crl := (&testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), NextUpdate: now.Add(24 * time.Hour), Entries: []testpki.Entry{{Serial: bob.Cert.SerialNumber, Reason: 1}}}).Build()
		ldif = fmt.Sprintf(`dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=LDAP Root CA,dc=example,dc=org
objectClass: applicationProcess
objectClass: certificationAuthority
cn: LDAP Root CA
cACertificate;binary:: %s
certificateRevocationList;binary:: %s
authorityRevocationList;binary:: %s

dn: cn=alice,dc=example,dc=org
objectClass: inetOrgPerson
cn: alice
sn: tester
mail: alice@example.org
userCertificate;binary:: %s

dn: cn=bob,dc=example,dc=org
objectClass: inetOrgPerson
cn: bob
sn: tester
mail: bob@example.org
userCertificate;binary:: %s
`, b64(root.DER()), b64(crl), b64(crl), b64(alice.DER()), b64(bob.DER()))
		return
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	alice, bob, carol, ldif := mk(addr)
	s := startSlapdWith(t, ldif, addr)

	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", root.DER())
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("ldapserver "+addr+":::dc=example,dc=org\nldaptimeout 2\nmax-replies 1\n"), 0o600)
	startDaemon(t, daemon, home)

	check := func(c *testpki.Cert, code int, want string) {
		t.Helper()
		r := runClientProg(t, client, home, c.DER(), "-v")
		if r.code != code || !strings.Contains(r.out, want) {
			t.Errorf("exit %d (want %d): %q lacks %q", r.code, code, r.out, want)
		}
	}
	check(alice, 0, "certificate is valid")
	check(bob, 1, "certificate has been revoked")
	gca(t, home, "FLUSHCRLS")
	check(carol, 0, "certificate is valid") // host-less DP, via the configured server
	if n := strings.Count(s.logText(), `base="cn=LDAP Root CA,dc=example,dc=org"`); n != 2 {
		t.Errorf("%d CRL searches, want 2 (ldap://host/ and ldap:///)", n)
	}
	list := gca(t, home, "LISTCRLS")
	if !strings.Contains(list, "retrieved via ldap://") {
		t.Errorf("CRL not from LDAP:\n%s", list)
	}

	// LOOKUP against the directory.
	out := normalize(gca(t, home, "LOOKUP %3Calice@example.org%3E"))
	if !strings.Contains(out, "D "+string(alice.DER())) || !strings.HasSuffix(out, "END\nOK\n") {
		t.Errorf("LOOKUP <mail>: %q", out)
	}
	out = normalize(gca(t, home, "LOOKUP tester"))
	if !strings.Contains(out, "S TRUNCATED 1") {
		t.Errorf("max-replies 1 with two matches: %q", out)
	}
	out = normalize(gca(t, home, "LOOKUP /cn=alice,dc=example,dc=org"))
	if !strings.Contains(out, "D "+string(alice.DER())) {
		t.Errorf("LOOKUP /DN: %q", out)
	}
	out = normalize(gca(t, home, "LOOKUP --url ldap://"+addr+"/cn=LDAP%2520Root%2520CA,dc=example,dc=org?cACertificate;binary"))
	if !strings.Contains(out, "D "+string(root.DER())) {
		t.Errorf("LOOKUP --url ldap://: %q", out)
	}
	out = gca(t, home, "LOOKUP nobody-here")
	if !strings.Contains(out, "ERR 167772218 No data") {
		t.Errorf("LOOKUP without match: %q", out)
	}
	// Hostile patterns reach slapd escaped (RFC 4515).
	gca(t, home, "LOOKUP *%29%28uid=*", "LOOKUP a%5Cb%28c")
	time.Sleep(200 * time.Millisecond)
	log := s.logText()
	if !strings.Contains(log, `filter="(|(sn=*\29\28uid=\2A*)`) && !strings.Contains(log, `filter="(|(sn=*\29\28uid=\2a*)`) {
		t.Errorf("escaped filter not seen by slapd:\n%s", grepLines(log, "filter="))
	}
	t.Logf("slapd saw:\n%s", grepLines(log, "filter="))
	if strings.Contains(log, "(uid=*") {
		t.Errorf("filter injection reached slapd:\n%s", grepLines(log, "filter="))
	}
	if !strings.Contains(strings.ToLower(log), `a\5cb\28c`) {
		t.Errorf("backslash/parenthesis not escaped:\n%s", grepLines(log, "filter="))
	}

	// Bind with user and password (slapd's rootdn), and a wrong password.
	out = normalize(gca(t, home, "LDAPSERVER --clear", "LDAPSERVER "+addr+":cn=admin,dc=example,dc=org:secret:dc=example,dc=org", "LOOKUP %3Cbob@example.org%3E"))
	if !strings.Contains(out, "D "+string(bob.DER())) {
		t.Errorf("LOOKUP with bind: %q", out)
	}
	if !strings.Contains(s.logText(), `BIND dn="cn=admin,dc=example,dc=org" method=128`) {
		t.Errorf("no simple bind seen by slapd:\n%s", grepLines(s.logText(), "BIND"))
	}
	// The configured server (from dirmngr.conf) still answers after a
	// failed bind on the session's.
	out = gca(t, home, "LDAPSERVER --clear", "LDAPSERVER "+addr+":cn=admin,dc=example,dc=org:wrong:dc=example,dc=org", "LOOKUP %3Cbob@example.org%3E")
	if !strings.Contains(out, "END") {
		t.Errorf("fallback after a failed bind: %q", out)
	}

	// A server sending hostile BER: errors, the daemon keeps serving.
	evil, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	go func() {
		for {
			c, err := evil.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01, 0x65, 0x80, 0xff, 0xff})
			c.Close()
		}
	}()
	out = gca(t, home, "LOOKUP --url ldap://"+evil.Addr().String()+"/cn=x?cACertificate", "GETINFO version")
	if !strings.Contains(out, "ERR ") || !strings.Contains(out, "D 2.2.40") {
		t.Errorf("hostile LDAP server: %q", out)
	}

	// A server that accepts and never answers: the ldaptimeout (2 s) ends
	// the attempt with an error.
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	out = gca(t, home, "LDAPSERVER --clear", "LDAPSERVER "+hole.Addr().String()+":::dc=example,dc=org", "LOOKUP --url ldap://"+hole.Addr().String()+"/cn=x?cACertificate")
	if d := time.Since(start); d > 10*time.Second || !strings.Contains(out, "ERR ") {
		t.Errorf("black hole: %v, %q", d, out)
	}
	gca(t, home, "KILLDIRMNGR")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestLDAPProxyAndGpgsm: --ldap-proxy replaces the host of ldap:// DPs
// (with --only-ldap-proxy no fallback), and gpgsm --verify checks a
// certificate whose only distribution point is ldap:// through our daemon.
func TestLDAPProxyAndGpgsm(t *testing.T) {
	daemon := bin(t, "dirmngr")
	client := bin(t, "dirmngr-client")
	root := testpki.NewRoot(testpki.Template{Subject: testpki.Name("Proxy Root CA", "Example", "DE")})
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// The DP names an unreachable host; only the proxy can answer.
	dp := "ldap://127.0.0.1:1/cn=Proxy%20Root%20CA,dc=example,dc=org?certificateRevocationList;binary"
	good := root.Issue(testpki.Template{Subject: testpki.Name("good", "Example", "DE"), CRLURLs: []string{dp}})
	bad := root.Issue(testpki.Template{Subject: testpki.Name("bad", "Example", "DE"), CRLURLs: []string{dp}})
	crl := (&testpki.CRLSpec{Issuer: root, Number: big.NewInt(1), NextUpdate: time.Now().Add(24 * time.Hour), Entries: []testpki.Entry{{Serial: bad.Cert.SerialNumber, Reason: 1}}}).Build()
	startSlapdWith(t, fmt.Sprintf(`dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=Proxy Root CA,dc=example,dc=org
objectClass: applicationProcess
objectClass: certificationAuthority
cn: Proxy Root CA
cACertificate;binary:: %s
certificateRevocationList;binary:: %s
authorityRevocationList;binary:: %s
`, b64(root.DER()), b64(crl), b64(crl)), addr)
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", root.DER())
	os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte("ldap-proxy "+addr+"\nonly-ldap-proxy\nldaptimeout 3\n"), 0o600)
	startDaemon(t, daemon, home)
	if r := runClientProg(t, client, home, good.DER(), "-v"); r.code != 0 {
		t.Errorf("via proxy: %d %s", r.code, r.out)
	}
	if r := runClientProg(t, client, home, bad.DER(), "-v"); r.code != 1 {
		t.Errorf("revoked via proxy: %d %s", r.code, r.out)
	}
	gca(t, home, "KILLDIRMNGR")

	// gpgsm through our daemon, the CRL only in LDAP.
	l := &lab{dir: t.TempDir(), root: root}
	for _, sc := range []struct {
		signer *testpki.Cert
		want   string
	}{{good, "Good signature"}, {bad, "certificate has been revoked"}} {
		ghome := newHome(t)
		os.WriteFile(filepath.Join(ghome, "gpgsm.conf"), []byte("dirmngr-program "+daemon+"\n"), 0o600)
		os.WriteFile(filepath.Join(ghome, "trustlist.txt"), []byte(root.Fingerprint()+" S\n"), 0o600)
		os.WriteFile(filepath.Join(ghome, "dirmngr.conf"), []byte("ldap-proxy "+addr+"\nonly-ldap-proxy\n"), 0o600)
		f1 := testpki.WriteFile(ghome, "root.der", root.DER())
		f2 := testpki.WriteFile(ghome, "ee.der", sc.signer.DER())
		if out, err := exec.Command("gpgsm", "--homedir", ghome, "--batch", "--disable-dirmngr", "--import", f1, f2).CombinedOutput(); err != nil {
			t.Fatalf("import: %v %s", err, out)
		}
		sig, data := l.sign(t, sc.signer, "ldap-"+sc.signer.Cert.Subject.CommonName)
		out, _ := runGpgsm(t, ghome, "--verify", sig, data)
		if !strings.Contains(verdict(out), sc.want) {
			t.Errorf("gpgsm: %q, want %q\n%s", verdict(out), sc.want, out)
		}
	}
}

func tlsLines(dir string, c *testpki.Cert) string {
	if c == nil {
		return ""
	}
	cert := testpki.WriteFile(dir, "server.pem", c.PEM())
	key := testpki.WriteFile(dir, "server.key", c.KeyPEM())
	return "TLSCertificateFile " + cert + "\nTLSCertificateKeyFile " + key + "\n"
}

// TestLDAPStartTLS: a starttls server spec upgrades the connection and
// verifies slapd's certificate against trusted-certs.
func TestLDAPStartTLS(t *testing.T) {
	daemon := bin(t, "dirmngr")
	ca := testpki.NewRoot(testpki.Template{Subject: testpki.Name("TLS Root CA", "Example", "DE")})
	srvCert := ca.Issue(testpki.Template{Subject: testpki.Name("127.0.0.1", "", ""), IPs: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUse: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	user := ca.Issue(testpki.Template{Subject: testpki.Name("tls user", "", ""), Email: []string{"tls@example.org"}})
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startSlapdTLS(t, fmt.Sprintf(`dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=tls user,dc=example,dc=org
objectClass: inetOrgPerson
cn: tls user
sn: user
mail: tls@example.org
userCertificate;binary:: %s
`, b64(user.DER())), addr, srvCert)
	for _, trusted := range []bool{true, false} {
		home := newHome(t)
		if trusted {
			os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
			testpki.WriteFile(filepath.Join(home, "trusted-certs"), "ca.crt", ca.DER())
		}
		startDaemon(t, daemon, home)
		out := normalize(gca(t, home, "LDAPSERVER "+addr+":::dc=example,dc=org:starttls", "LOOKUP %3Ctls@example.org%3E"))
		found := strings.Contains(out, "D "+string(user.DER()))
		if found != trusted {
			t.Errorf("trusted=%v: found=%v\n%q", trusted, found, out)
		}
		gca(t, home, "KILLDIRMNGR")
	}
	if !strings.Contains(s.logText(), "oid=1.3.6.1.4.1.1466.20037") {
		t.Errorf("no StartTLS request seen by slapd:\n%s", grepLines(s.logText(), "EXT"))
	}
}
