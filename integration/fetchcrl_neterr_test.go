package integration

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// TestFetchCRLNetworkErrorsMatchPerl: a refused connection and a server
// that never answers are reported with the words Perl fetch-crl uses, and
// the next URL is tried.
func TestFetchCRLNetworkErrorsMatchPerl(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() { // accepts and never answers
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	l := newFCLab(t)
	now := time.Now().Truncate(time.Second)
	l.addCA(t, "RefusedCA", "info", testpki.RSA, fmt.Sprintf("alias = RefusedCA\ncrl_url = http://%s/r.crl;%s/r.crl\n", dead, l.base))
	l.addCA(t, "SilentCA", "info", testpki.RSA, fmt.Sprintf("alias = SilentCA\ncrl_url = http://%s/s.crl;%s/s.crl\n", hang.Addr(), l.base))
	l.serve("/r.crl", l.crl("RefusedCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	l.serve("/s.crl", l.crl("SilentCA", 1, now.Add(-time.Hour), now.Add(48*time.Hour), 1))
	o := l.runFC(t, ours, "ours", "-T", "1")
	p := l.runFC(t, perl, "perl", "-T", "1")
	if strings.Join(o.lines, "\n") != strings.Join(p.lines, "\n") || o.code != p.code {
		t.Errorf("ours %d %q\nPerl %d %q", o.code, o.lines, p.code, p.lines)
	}
}
