// Package certinfo reads what dirmngr needs from an X.509 certificate
// (issuer, serial, subject, CRL distribution points, freshestCRL,
// authority key identifier, authority information access, basic
// constraints, key usage) with its own lenient DER reader, so that a
// certificate crypto/x509 refuses for an extension it dislikes (a
// nameRelativeToCRLIssuer distribution point, a negative serial) can still
// be checked for revocation. When crypto/x509 does parse the certificate,
// the result is kept in Cert for signature checks.
package certinfo

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// MaxSize bounds the certificates Parse accepts.
const MaxSize = 1 << 20

// Info is what dirmngr reads from a certificate.
type Info struct {
	Raw        []byte
	Serial     []byte // DER INTEGER content octets
	RawIssuer  []byte
	Issuer     string // libksba rendering
	IssuerHash string
	RawSubject []byte
	Subject    string

	// DistributionPoints is cRLDistributionPoints; Freshest is
	// freshestCRL (where its delta CRLs are).
	DistributionPoints []crl.DistributionPoint
	Freshest           []crl.DistributionPoint
	AKIKeyID           []byte
	SKI                []byte
	OCSPServers        []string // AIA id-ad-ocsp URIs
	IssuingCertURLs    []string // AIA id-ad-caIssuers URIs
	// IsCA is basicConstraints cA (false when absent).
	IsCA                  bool
	BasicConstraintsValid bool
	// KeyUsage is the keyUsage bits as crypto/x509 numbers them; 0 when
	// absent.
	KeyUsage x509.KeyUsage
	// Critical lists the critical extensions' OIDs.
	Critical []asn1.ObjectIdentifier

	// Cert is crypto/x509's parse, nil when it refused the certificate
	// (ParseErr says why).
	Cert     *x509.Certificate
	ParseErr error
}

// URIs returns the http(s)/ldap URIs named by the fullNames of dps.
func URIs(dps []crl.DistributionPoint) []string {
	var out []string
	for _, dp := range dps {
		if dp.Name == nil {
			continue
		}
		for _, g := range dp.Name.FullName {
			if g.Tag == 6 {
				out = append(out, g.URI)
			}
		}
	}
	return out
}

var (
	oidDP       = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidFreshest = asn1.ObjectIdentifier{2, 5, 29, 46}
	oidAKI      = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidSKI      = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidBasic    = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidAIA      = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidOCSP     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	oidCAIssuer = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 2}
)

func errBER(what string) error {
	return &gpgerr.Error{Code: gpgerr.ErrBadBER, Source: gpgerr.SourceKSBA, Err: fmt.Errorf("certinfo: %s", what)}
}

// FromX509 builds an Info from a certificate crypto/x509 parsed.
func FromX509(c *x509.Certificate) (*Info, error) {
	in, err := Parse(c.Raw)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// Parse reads a DER certificate. Malformed DER is a "BER error" (as
// libksba reports it); extensions crypto/x509 refuses are not.
func Parse(der []byte) (*Info, error) {
	if len(der) == 0 {
		return nil, gpgerr.ErrMissingCert
	}
	if len(der) > MaxSize {
		return nil, errBER("certificate too large")
	}
	in := &Info{Raw: der}
	s := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !s.ReadASN1(&cert, cbasn1.SEQUENCE) || !s.Empty() || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, errBER("not a certificate")
	}
	var serial, issuer, subject, skip cryptobyte.String
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1(&serial, cbasn1.INTEGER) || len(serial) == 0 ||
		!tbs.ReadASN1(&skip, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&skip, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&skip, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific()) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific()) {
		return nil, errBER("malformed TBSCertificate")
	}
	in.Serial, in.RawIssuer, in.RawSubject = serial, issuer, subject
	var err error
	if in.Issuer, err = certid.DN(issuer); err != nil {
		return nil, errBER("issuer name")
	}
	in.IssuerHash = certid.Hash(in.Issuer)
	if in.Subject, err = certid.DN(subject); err != nil {
		return nil, errBER("subject name")
	}
	var exts cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&exts, &present, cbasn1.Tag(3).Constructed().ContextSpecific()) || !tbs.Empty() {
		return nil, errBER("malformed TBSCertificate")
	}
	if present {
		if err := in.parseExtensions(exts); err != nil {
			return nil, err
		}
	}
	in.Cert, in.ParseErr = x509.ParseCertificate(der)
	return in, nil
}

func (in *Info) parseExtensions(s cryptobyte.String) error {
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return errBER("extensions")
	}
	seen := map[string]bool{}
	for !seq.Empty() {
		var ext, val cryptobyte.String
		var oid asn1.ObjectIdentifier
		critical := false
		if !seq.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) ||
			!readBool(&ext, &critical) ||
			!ext.ReadASN1(&val, cbasn1.OCTET_STRING) || !ext.Empty() {
			return errBER("extension")
		}
		if seen[oid.String()] {
			return errBER("duplicate extension " + oid.String())
		}
		seen[oid.String()] = true
		if critical {
			in.Critical = append(in.Critical, oid)
		}
		if err := in.parseExtension(oid, val); err != nil {
			return err
		}
	}
	return nil
}

func (in *Info) parseExtension(oid asn1.ObjectIdentifier, val cryptobyte.String) error {
	var err error
	switch {
	case oid.Equal(oidDP):
		if in.DistributionPoints, err = crl.ParseDistributionPoints(val); err != nil {
			return errBER("cRLDistributionPoints: " + err.Error())
		}
	case oid.Equal(oidFreshest):
		if in.Freshest, err = crl.ParseDistributionPoints(val); err != nil {
			return errBER("freshestCRL: " + err.Error())
		}
	case oid.Equal(oidAKI):
		var seq, kid cryptobyte.String
		var present bool
		if !val.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadOptionalASN1(&kid, &present, cbasn1.Tag(0).ContextSpecific()) {
			return errBER("authorityKeyIdentifier")
		}
		if present {
			in.AKIKeyID = kid
		}
	case oid.Equal(oidSKI):
		var kid cryptobyte.String
		if !val.ReadASN1(&kid, cbasn1.OCTET_STRING) {
			return errBER("subjectKeyIdentifier")
		}
		in.SKI = kid
	case oid.Equal(oidBasic):
		var seq cryptobyte.String
		if !val.ReadASN1(&seq, cbasn1.SEQUENCE) || !readBool(&seq, &in.IsCA) {
			return errBER("basicConstraints")
		}
		in.BasicConstraintsValid = true
	case oid.Equal(oidKeyUsage):
		var bits asn1.BitString
		if !val.ReadASN1BitString(&bits) {
			return errBER("keyUsage")
		}
		for i := range 9 {
			if bits.At(i) != 0 {
				in.KeyUsage |= 1 << uint(i)
			}
		}
	case oid.Equal(oidAIA):
		return in.parseAIA(val)
	}
	return nil
}

func (in *Info) parseAIA(val cryptobyte.String) error {
	var seq cryptobyte.String
	if !val.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return errBER("authorityInfoAccess")
	}
	for !seq.Empty() {
		var ad, loc cryptobyte.String
		var method asn1.ObjectIdentifier
		var tag cbasn1.Tag
		if !seq.ReadASN1(&ad, cbasn1.SEQUENCE) || !ad.ReadASN1ObjectIdentifier(&method) || !ad.ReadAnyASN1(&loc, &tag) {
			return errBER("AccessDescription")
		}
		if tag != cbasn1.Tag(6).ContextSpecific() {
			continue
		}
		switch {
		case method.Equal(oidOCSP):
			in.OCSPServers = append(in.OCSPServers, string(loc))
		case method.Equal(oidCAIssuer):
			in.IssuingCertURLs = append(in.IssuingCertURLs, string(loc))
		}
	}
	return nil
}

// readBool reads an optional BOOLEAN DEFAULT FALSE.
func readBool(s *cryptobyte.String, out *bool) bool {
	*out = false
	if !s.PeekASN1Tag(cbasn1.BOOLEAN) {
		return true
	}
	return s.ReadASN1Boolean(out)
}
