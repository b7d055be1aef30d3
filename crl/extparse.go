package crl

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// Entry and CRL extensions of the streaming parser.

// DER contents of the entry extension OIDs, compared without decoding.
var (
	rawReasonCode        = []byte{0x55, 0x1d, 0x15} // 2.5.29.21
	rawInvalidityDate    = []byte{0x55, 0x1d, 0x18} // 2.5.29.24
	rawCertificateIssuer = []byte{0x55, 0x1d, 0x1d} // 2.5.29.29
)

// oidText renders DER OID contents for messages.
func oidText(der []byte) string {
	s := cryptobyte.String(asn1Wrap(0x06, der))
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1ObjectIdentifier(&oid) {
		return fmt.Sprintf("%X", der)
	}
	return oid.String()
}

var (
	oidCRLNumber = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidAKI       = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidDelta     = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIDP       = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidFreshest  = asn1.ObjectIdentifier{2, 5, 29, 46}
)

func parseEntry(body []byte, e *Entry) error {
	s := cryptobyte.String(body)
	var serial cryptobyte.String
	if !s.ReadASN1(&serial, cbasn1.INTEGER) || len(serial) == 0 || len(serial) > 64 {
		return errBER("serial number")
	}
	e.Serial = serial
	var tag cbasn1.Tag
	var tb cryptobyte.String
	if !s.ReadAnyASN1(&tb, &tag) {
		return errBER("revocation date")
	}
	t, err := parseTime(byte(tag), tb)
	if err != nil {
		return err
	}
	e.RevokedAt = t
	e.Reason = 0
	e.InvalidityDate = time.Time{}
	if s.Empty() {
		return nil
	}
	var exts cryptobyte.String
	if !s.ReadASN1(&exts, cbasn1.SEQUENCE) || !s.Empty() {
		return errBER("entry extensions")
	}
	seen := 0
	for !exts.Empty() {
		var ext, val, oid cryptobyte.String
		critical := false
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!readCritical(&ext, &critical) ||
			!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return errBER("entry extension")
		}
		bit := 0
		switch {
		case bytes.Equal(oid, rawReasonCode):
			bit = 1
			var code int64
			var inner cryptobyte.String
			if !val.ReadASN1(&inner, cbasn1.ENUM) || !val.Empty() || len(inner) != 1 {
				return errBER("reasonCode")
			}
			code = int64(inner[0])
			e.Reason = reasonFromCode(code)
		case bytes.Equal(oid, rawInvalidityDate):
			bit = 2
			var tb cryptobyte.String
			if !val.ReadASN1(&tb, cbasn1.GeneralizedTime) || !val.Empty() {
				return errBER("invalidityDate")
			}
			t, err := parseTime(0x18, tb)
			if err != nil {
				return fmt.Errorf("invalidityDate: %w", err)
			}
			e.InvalidityDate = t
		case bytes.Equal(oid, rawCertificateIssuer):
			bit = 4
			// It applies to this entry and the following ones (RFC 5280
			// §5.3.3): the caller's Entry keeps it until replaced.
			dn, raw, err := ParseCertificateIssuer(val)
			if err != nil {
				return err
			}
			e.CertIssuer, e.CertIssuerRaw, e.CertIssuerHash = dn, raw, certid.Hash(dn)
		default:
			if critical {
				return fmt.Errorf("crl: unknown critical entry extension %s: %w", oidText(oid), gpgerr.ErrUnknownCritExtn)
			}
			continue
		}
		if seen&bit != 0 {
			return errInvalid("duplicate entry extension %s", oidText(oid))
		}
		seen |= bit
	}
	return nil
}

func (in *Info) parseExtensions(body []byte) error {
	s := cryptobyte.String(body)
	var exts cryptobyte.String
	if !s.ReadASN1(&exts, cbasn1.SEQUENCE) || !s.Empty() {
		return errBER("crlExtensions")
	}
	seen := map[string]bool{}
	for !exts.Empty() {
		var ext, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		critical := false
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!readCritical(&ext, &critical) ||
			!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return errBER("CRL extension")
		}
		key := oid.String()
		if seen[key] {
			return errInvalid("duplicate CRL extension %s", key)
		}
		seen[key] = true
		switch {
		case oid.Equal(oidCRLNumber):
			var n big.Int
			if !val.ReadASN1Integer(&n) || !val.Empty() || n.Sign() < 0 {
				return errBER("cRLNumber")
			}
			in.Number = &n
		case oid.Equal(oidAKI):
			if err := in.parseAKI(val); err != nil {
				return err
			}
		case oid.Equal(oidIDP):
			p, err := ParseIDP(val)
			if err != nil {
				return err
			}
			in.IDP, in.RawIDP = p, append([]byte(nil), val...)
		case oid.Equal(oidDelta):
			n, err := ParseDeltaCRLIndicator(val)
			if err != nil {
				return err
			}
			in.DeltaBase = n
		case oid.Equal(oidFreshest):
			dps, err := ParseDistributionPoints(val)
			if err != nil {
				return fmt.Errorf("freshestCRL: %w", err)
			}
			in.Freshest = dps
		default:
			if critical {
				in.UnknownCritical = append(in.UnknownCritical, key)
			}
		}
	}
	return nil
}

func (in *Info) parseAKI(val cryptobyte.String) error {
	var seq cryptobyte.String
	if !val.ReadASN1(&seq, cbasn1.SEQUENCE) || !val.Empty() {
		return errBER("authorityKeyIdentifier")
	}
	var kid cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&kid, &present, cbasn1.Tag(0).ContextSpecific()) {
		return errBER("authorityKeyIdentifier keyIdentifier")
	}
	if present {
		in.AKIKeyID = append([]byte(nil), kid...)
	}
	var names cryptobyte.String
	if !seq.ReadOptionalASN1(&names, &present, cbasn1.Tag(1).ContextSpecific().Constructed()) {
		return errBER("authorityKeyIdentifier authorityCertIssuer")
	}
	if present {
		for !names.Empty() {
			var gn cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&gn, &tag) {
				return errBER("authorityCertIssuer")
			}
			if tag == cbasn1.Tag(4).ContextSpecific().Constructed() {
				dn, err := certid.DN(gn)
				if err != nil {
					return errBER("authorityCertIssuer name")
				}
				in.AKIIssuer = append(in.AKIIssuer, dn)
			}
		}
	}
	var sn cryptobyte.String
	if !seq.ReadOptionalASN1(&sn, &present, cbasn1.Tag(2).ContextSpecific()) || !seq.Empty() {
		return errBER("authorityKeyIdentifier serial")
	}
	if present {
		in.AKISerial = append([]byte(nil), sn...)
	}
	return nil
}
