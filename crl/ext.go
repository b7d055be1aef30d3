package crl

import (
	"bytes"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/dirmngr/dirmngr/certid"
)

// RFC 5280 extension parsers shared by CRLs and certificates:
// issuingDistributionPoint (§5.2.5), deltaCRLIndicator (§5.2.4),
// freshestCRL and cRLDistributionPoints (§4.2.1.13, §5.2.6) and the
// certificateIssuer entry extension (§5.3.3). Every parser takes the
// extension's extnValue (the DER inside the OCTET STRING), refuses
// trailing data and bounds nothing itself: callers bound the input.

// GeneralName is one GeneralName. Only the forms revocation needs are
// decoded (URI, directoryName); the others keep their tag and content.
type GeneralName struct {
	Tag   int    // context tag: 1 rfc822Name, 2 dNSName, 4 directoryName, 6 URI, ...
	URI   string // uniformResourceIdentifier (Tag 6)
	DN    string // directoryName rendered as libksba does (Tag 4)
	RawDN []byte // directoryName: the DER of the Name (Tag 4)
	Raw   []byte // the content octets as encoded
}

// Equal reports whether two names are the same name: directory names
// compare by their libksba rendering (so that encodings that differ only
// in string type match), everything else by content.
func (g GeneralName) Equal(o GeneralName) bool {
	if g.Tag != o.Tag {
		return false
	}
	if g.Tag == 4 {
		return g.DN == o.DN
	}
	return bytes.Equal(g.Raw, o.Raw)
}

// DPName is a DistributionPointName: a fullName or a name relative to the
// CRL issuer (an RDN appended to the issuer's DN).
type DPName struct {
	FullName []GeneralName
	// RelativeRDN is the DER of the nameRelativeToCRLIssuer SET (nil when
	// FullName is used).
	RelativeRDN []byte
}

// Resolve returns the names this DP name stands for; a relative name is
// appended to issuerDN (the DER of the CRL issuer's Name).
func (n *DPName) Resolve(issuerDN []byte) ([]GeneralName, error) {
	if n == nil {
		return nil, nil
	}
	if n.RelativeRDN == nil {
		return n.FullName, nil
	}
	s := cryptobyte.String(issuerDN)
	var rdns cryptobyte.String
	if !s.ReadASN1(&rdns, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errBER("issuer name of a nameRelativeToCRLIssuer")
	}
	full := asn1Wrap(0x30, append(append([]byte(nil), rdns...), n.RelativeRDN...))
	dn, err := certid.DN(full)
	if err != nil {
		return nil, errBER("nameRelativeToCRLIssuer")
	}
	return []GeneralName{{Tag: 4, DN: dn, RawDN: full, Raw: full}}, nil
}

// IDP is a parsed issuingDistributionPoint.
type IDP struct {
	Name          *DPName // nil: no distributionPoint (scope by the flags only)
	OnlyUser      bool    // onlyContainsUserCerts
	OnlyCA        bool    // onlyContainsCACerts
	OnlySomeRsns  Reason  // onlySomeReasons; 0 = all reasons
	Indirect      bool    // indirectCRL
	OnlyAttribute bool    // onlyContainsAttributeCerts
}

// Reasons returns the reasons the CRL covers: onlySomeReasons, or all.
func (p *IDP) Reasons() Reason {
	if p == nil || p.OnlySomeRsns == 0 {
		return AllReasons
	}
	return p.OnlySomeRsns
}

// DistributionPoint is one entry of cRLDistributionPoints or freshestCRL.
type DistributionPoint struct {
	Name      *DPName       // nil when absent
	Reasons   Reason        // 0 = all reasons
	CRLIssuer []GeneralName // nil: the certificate's issuer issues the CRL
}

// AllReasons is the set of reasons a CRL without onlySomeReasons covers:
// every ReasonFlags bit (the "unused" bit 0 counted as unspecified).
const AllReasons = ReasonUnspecified | ReasonKeyCompromise | ReasonCACompromise |
	ReasonAffiliationChanged | ReasonSuperseded | ReasonCessationOfOperation |
	ReasonCertificateHold | ReasonPrivilegeWithdrawn | ReasonAACompromise

// reasonFlagBits maps ReasonFlags bit numbers (BIT STRING order) to Reason.
// Bit 0 ("unused") stands for the reasons no other flag names
// (unspecified): RFC 5280's all-reasons is every ReasonFlags bit.
var reasonFlagBits = [...]Reason{
	ReasonUnspecified, // unused
	ReasonKeyCompromise, ReasonCACompromise, ReasonAffiliationChanged, ReasonSuperseded,
	ReasonCessationOfOperation, ReasonCertificateHold, ReasonPrivilegeWithdrawn, ReasonAACompromise,
}

// parseReasonFlags decodes the content of a ReasonFlags BIT STRING
// (first octet: unused bits).
func parseReasonFlags(b []byte) (Reason, error) {
	if len(b) == 0 || b[0] > 7 || (len(b) == 1 && b[0] != 0) {
		return 0, errBER("ReasonFlags")
	}
	var r Reason
	for i, octet := range b[1:] {
		for bit := range 8 {
			if octet&(0x80>>bit) == 0 {
				continue
			}
			n := i*8 + bit
			if n < len(reasonFlagBits) {
				r |= reasonFlagBits[n]
			}
		}
	}
	if r == 0 {
		// Only bits we do not know: no reason covered at all, which
		// is not "all reasons".
		r = ReasonOther
	}
	return r, nil
}

// ParseGeneralNames parses a GeneralNames SEQUENCE (with its header).
func ParseGeneralNames(der []byte) ([]GeneralName, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errBER("GeneralNames")
	}
	return parseGeneralNameList(seq)
}

// parseGeneralNameList parses the contents of a GeneralNames.
func parseGeneralNameList(s cryptobyte.String) ([]GeneralName, error) {
	var out []GeneralName
	for !s.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadAnyASN1(&v, &tag) || tag&0xc0 != 0x80 {
			return nil, errBER("GeneralName")
		}
		g := GeneralName{Tag: int(tag & 0x1f), Raw: append([]byte(nil), v...)}
		switch g.Tag {
		case 4:
			if tag&0x20 == 0 {
				return nil, errBER("directoryName")
			}
			var name cryptobyte.String
			inner := v
			if !inner.ReadASN1Element(&name, cbasn1.SEQUENCE) || !inner.Empty() {
				return nil, errBER("directoryName")
			}
			dn, err := certid.DN(name)
			if err != nil {
				return nil, errBER("directoryName")
			}
			g.DN, g.RawDN = dn, append([]byte(nil), name...)
		case 6:
			if tag&0x20 != 0 {
				return nil, errBER("uniformResourceIdentifier")
			}
			g.URI = string(v)
		}
		out = append(out, g)
	}
	if len(out) == 0 {
		return nil, errBER("empty GeneralNames")
	}
	return out, nil
}

// parseDPName parses a DistributionPointName, given the content of the
// [0] that holds it.
func parseDPName(s cryptobyte.String) (*DPName, error) {
	var v cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&v, &tag) || !s.Empty() {
		return nil, errBER("DistributionPointName")
	}
	switch tag {
	case cbasn1.Tag(0).ContextSpecific().Constructed():
		names, err := parseGeneralNameList(v)
		if err != nil {
			return nil, fmt.Errorf("fullName: %w", err)
		}
		return &DPName{FullName: names}, nil
	case cbasn1.Tag(1).ContextSpecific().Constructed():
		// RelativeDistinguishedName: SET OF AttributeTypeAndValue,
		// IMPLICIT: re-tag as SET.
		if len(v) == 0 {
			return nil, errBER("empty nameRelativeToCRLIssuer")
		}
		return &DPName{RelativeRDN: asn1Wrap(0x31, v)}, nil
	}
	return nil, errBER("DistributionPointName: tag 0x%02x", byte(tag))
}

// ParseIDP parses the extnValue of an issuingDistributionPoint.
func ParseIDP(der []byte) (*IDP, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errBER("issuingDistributionPoint")
	}
	if seq.Empty() {
		// RFC 5280 §5.2.5: the IDP MUST NOT be an empty sequence.
		return nil, errInvalid("empty issuingDistributionPoint")
	}
	p := &IDP{}
	var v cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&v, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, errBER("issuingDistributionPoint distributionPoint")
	}
	if present {
		n, err := parseDPName(v)
		if err != nil {
			return nil, fmt.Errorf("issuingDistributionPoint: %w", err)
		}
		p.Name = n
	}
	flag := func(n int, dst *bool) error {
		var b cryptobyte.String
		var ok bool
		if !seq.ReadOptionalASN1(&b, &ok, cbasn1.Tag(n).ContextSpecific()) {
			return errBER("issuingDistributionPoint [%d]", n)
		}
		if ok {
			// DER: DEFAULT FALSE is never encoded, so TRUE only.
			if len(b) != 1 || b[0] != 0xff {
				return errBER("issuingDistributionPoint [%d]: not TRUE", n)
			}
			*dst = true
		}
		return nil
	}
	if err := flag(1, &p.OnlyUser); err != nil {
		return nil, err
	}
	if err := flag(2, &p.OnlyCA); err != nil {
		return nil, err
	}
	if !seq.ReadOptionalASN1(&v, &present, cbasn1.Tag(3).ContextSpecific()) {
		return nil, errBER("issuingDistributionPoint onlySomeReasons")
	}
	if present {
		r, err := parseReasonFlags(v)
		if err != nil {
			return nil, fmt.Errorf("onlySomeReasons: %w", err)
		}
		p.OnlySomeRsns = r
	}
	if err := flag(4, &p.Indirect); err != nil {
		return nil, err
	}
	if err := flag(5, &p.OnlyAttribute); err != nil {
		return nil, err
	}
	if !seq.Empty() {
		return nil, errBER("issuingDistributionPoint: trailing data")
	}
	n := 0
	for _, b := range []bool{p.OnlyUser, p.OnlyCA, p.OnlyAttribute} {
		if b {
			n++
		}
	}
	if n > 1 {
		return nil, errInvalid("issuingDistributionPoint: more than one onlyContains flag")
	}
	return p, nil
}

// ParseDistributionPoints parses the extnValue of cRLDistributionPoints
// or freshestCRL (the same syntax).
func ParseDistributionPoints(der []byte) ([]DistributionPoint, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errBER("CRLDistributionPoints")
	}
	var out []DistributionPoint
	for !seq.Empty() {
		var dpb cryptobyte.String
		if !seq.ReadASN1(&dpb, cbasn1.SEQUENCE) {
			return nil, errBER("DistributionPoint")
		}
		var dp DistributionPoint
		var v cryptobyte.String
		var present bool
		if !dpb.ReadOptionalASN1(&v, &present, cbasn1.Tag(0).ContextSpecific().Constructed()) {
			return nil, errBER("DistributionPoint distributionPoint")
		}
		if present {
			n, err := parseDPName(v)
			if err != nil {
				return nil, fmt.Errorf("DistributionPoint: %w", err)
			}
			dp.Name = n
		}
		if !dpb.ReadOptionalASN1(&v, &present, cbasn1.Tag(1).ContextSpecific()) {
			return nil, errBER("DistributionPoint reasons")
		}
		if present {
			r, err := parseReasonFlags(v)
			if err != nil {
				return nil, fmt.Errorf("DistributionPoint reasons: %w", err)
			}
			dp.Reasons = r
		}
		if !dpb.ReadOptionalASN1(&v, &present, cbasn1.Tag(2).ContextSpecific().Constructed()) {
			return nil, errBER("DistributionPoint cRLIssuer")
		}
		if present {
			names, err := parseGeneralNameList(v)
			if err != nil {
				return nil, fmt.Errorf("cRLIssuer: %w", err)
			}
			dp.CRLIssuer = names
		}
		if !dpb.Empty() {
			return nil, errBER("DistributionPoint: trailing data")
		}
		if dp.Name == nil && dp.CRLIssuer == nil {
			return nil, errInvalid("DistributionPoint without distributionPoint or cRLIssuer")
		}
		out = append(out, dp)
	}
	if len(out) == 0 {
		return nil, errBER("empty CRLDistributionPoints")
	}
	return out, nil
}

// ParseDeltaCRLIndicator parses the extnValue of a deltaCRLIndicator:
// the BaseCRLNumber.
func ParseDeltaCRLIndicator(der []byte) (*big.Int, error) {
	s := cryptobyte.String(der)
	var n big.Int
	if !s.ReadASN1Integer(&n) || !s.Empty() || n.Sign() < 0 {
		return nil, errBER("deltaCRLIndicator")
	}
	return &n, nil
}

// ParseCertificateIssuer parses the extnValue of a certificateIssuer
// entry extension and returns the directory name it names (libksba
// rendering) with its DER. An issuer given by no directoryName is refused.
func ParseCertificateIssuer(der []byte) (dn string, raw []byte, err error) {
	names, err := ParseGeneralNames(der)
	if err != nil {
		return "", nil, fmt.Errorf("certificateIssuer: %w", err)
	}
	for _, g := range names {
		if g.Tag == 4 {
			return g.DN, g.RawDN, nil
		}
	}
	return "", nil, errInvalid("certificateIssuer without a directoryName")
}
