package server

import (
	"fmt"
	"io"
	"strings"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
)

// writeScope adds the RFC 5280 scope of a CRL to its LISTCRLS header;
// nothing for a plain full CRL, whose dump stays GnuPG's.
func writeScope(b io.StringWriter, m *crlcache.Meta) {
	w := stringWriter{b}
	if m.Delta {
		fmt.Fprintf(w, " Delta CRL  :\tfor base CRL number %s\n", m.BaseNumber)
	}
	if m.Freshest {
		b.WriteString(" Delta CRLs :\tnamed (freshestCRL)\n")
	}
	if m.Scope == "" {
		return
	}
	fmt.Fprintf(w, " Scope      :\t%s\n", m.Scope)
	idp, err := crl.ParseIDP(m.IDP)
	if err != nil {
		b.WriteString(" Scope      :\tunreadable issuingDistributionPoint\n")
		return
	}
	names, _ := idp.Name.Resolve(m.IssuerDER)
	for _, n := range names {
		switch n.Tag {
		case 4:
			fmt.Fprintf(w, "   DP name  :\t%s\n", n.DN)
		case 6:
			fmt.Fprintf(w, "   DP name  :\t%s\n", n.URI)
		}
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{idp.OnlyUser, "only user certificates"}, {idp.OnlyCA, "only CA certificates"},
		{idp.OnlyAttribute, "only attribute certificates"}, {idp.Indirect, "indirect CRL"}} {
		if f.on {
			fmt.Fprintf(w, "   Flags    :\t%s\n", f.name)
		}
	}
	if idp.OnlySomeRsns != 0 {
		fmt.Fprintf(w, "   Reasons  :\t%s\n", strings.TrimSpace(reasonNames(uint16(idp.OnlySomeRsns))))
	}
}

// stringWriter lets fmt.Fprintf write to an io.StringWriter.
type stringWriter struct{ io.StringWriter }

func (w stringWriter) Write(p []byte) (int, error) { return w.WriteString(string(p)) }
