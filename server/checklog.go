package server

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/revocation"
)

// logCheck logs the result of one CRL check at --verbose, as GnuPG's
// cache_isvalid does ("S/N … is valid, it is not listed in the CRL",
// "S/N … is not valid; reason=… date=…"), with the issuer's name.
func (s *Server) logCheck(c *cmd, issuerHash string, serial []byte, status revocation.Status) {
	if c.set.Opts.Verbose == 0 {
		return
	}
	cache, sessionID := c.set.Cache, c.as.ID
	sn := fmt.Sprintf("%X", serial)
	issuer := issuerHash
	if m, ok := cache.Get(issuerHash); ok && m.Issuer != "" {
		issuer = m.Issuer
	}
	switch status {
	case revocation.Valid:
		s.log.Info("S/N "+sn+" is valid, it is not listed in the CRL", "issuer", issuer, "session", sessionID)
	case revocation.Revoked:
		msg := "S/N " + sn + " is not valid"
		if e, revoked, ok, err := cache.Lookup(issuerHash, serial); err == nil && ok && revoked {
			reason := strings.TrimSpace(reasonNames(e.Reason))
			if reason == "" {
				reason = "none"
			}
			msg += fmt.Sprintf("; reason=%s date=%s", reason, e.RevokedAt.Format("20060102T150405"))
		}
		s.log.Info(msg, "issuer", issuer, "session", sessionID)
	default:
		s.log.Info("S/N "+sn+": no usable CRL", "issuer", issuer, "session", sessionID)
	}
}

// certIDs returns the issuer hash and serial number a CRL lookup of cert
// uses.
func certIDs(cert *x509.Certificate) (string, []byte, error) {
	h, err := certid.IssuerHash(cert)
	if err != nil {
		return "", nil, err
	}
	sn, err := certid.RawSerial(cert)
	return h, sn, err
}
