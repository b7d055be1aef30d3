package integration

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestFetchCRLConnectErrorMatchesPerl: a refused connection is reported
// with the words Perl fetch-crl uses, and the next URL is tried.
func TestFetchCRLConnectErrorMatchesPerl(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "RefusedCA", "info", testpki.RSA, fmt.Sprintf("alias = RefusedCA\ncrl_url = http://%s/r.crl;%s/r.crl\n", dead, l.base))
	l.serve("/r.crl", l.crl("RefusedCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	o := l.runFC(t, ours, "ours")
	p := l.runFC(t, perl, "perl")
	if strings.Join(o.lines, "\n") != strings.Join(p.lines, "\n") || o.code != p.code {
		t.Errorf("ours %d %q\nPerl %d %q", o.code, o.lines, p.code, p.lines)
	}
}
