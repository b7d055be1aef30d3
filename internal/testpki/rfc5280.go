package testpki

import (
	"crypto/x509/pkix"
	"encoding/asn1"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RFC 5280 extensions for CRLs and certificates, encoded by hand so that
// tests can build partitioned, delta and indirect CRLs and the
// certificates that point at them.

// More OIDs.
var (
	OIDFreshestCRL       = asn1.ObjectIdentifier{2, 5, 29, 46}
	OIDCertificateIssuer = asn1.ObjectIdentifier{2, 5, 29, 29}
	OIDCRLDistPoints     = asn1.ObjectIdentifier{2, 5, 29, 31}
)

// Names is a GeneralNames value: URIs and directory names (DER Names,
// e.g. a certificate's RawSubject).
type Names struct {
	URIs []string
	DNs  [][]byte
}

func (n Names) empty() bool { return len(n.URIs) == 0 && len(n.DNs) == 0 }

func (n Names) add(b *cryptobyte.Builder) {
	for _, u := range n.URIs {
		b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
	}
	for _, dn := range n.DNs {
		b.AddASN1(cbasn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(dn) })
	}
}

// IDPSpec describes an issuingDistributionPoint.
type IDPSpec struct {
	FullName                   Names
	OnlyUser, OnlyCA, OnlyAttr bool
	Indirect                   bool
	OnlySomeReasons            []int // ReasonFlags bit numbers (1 keyCompromise … 8 aACompromise)
}

// IDP returns the critical issuingDistributionPoint extension.
func IDP(s IDPSpec) Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if !s.FullName.empty() {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), s.FullName.add)
			})
		}
		flag := func(n int, on bool) {
			if on {
				b.AddASN1(cbasn1.Tag(n).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddUint8(0xff) })
			}
		}
		flag(1, s.OnlyUser)
		flag(2, s.OnlyCA)
		if len(s.OnlySomeReasons) > 0 {
			b.AddASN1(cbasn1.Tag(3).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(reasonFlags(s.OnlySomeReasons)) })
		}
		flag(4, s.Indirect)
		flag(5, s.OnlyAttr)
	})
	return Extension{ID: OIDIssuingDP, Critical: true, Value: b.BytesOrPanic()}
}

// reasonFlags encodes the content of a ReasonFlags BIT STRING.
func reasonFlags(bits []int) []byte {
	top := 0
	for _, n := range bits {
		top = max(top, n)
	}
	out := make([]byte, 1+top/8+1)
	for _, n := range bits {
		out[1+n/8] |= 0x80 >> (n % 8)
	}
	out = out[:1+top/8+1]
	out[0] = byte(7 - top%8) // unused bits
	return out
}

// DeltaIndicator returns the critical deltaCRLIndicator naming base.
func DeltaIndicator(base int64) Extension {
	var b cryptobyte.Builder
	b.AddASN1Int64(base)
	return Extension{ID: OIDDeltaCRL, Critical: true, Value: b.BytesOrPanic()}
}

// DP describes one DistributionPoint of a certificate (or freshestCRL).
type DP struct {
	FullName  Names
	Reasons   []int // ReasonFlags bit numbers; nil = all
	CRLIssuer Names
}

func distributionPoints(dps []DP) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, dp := range dps {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				if !dp.FullName.empty() {
					b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), dp.FullName.add)
					})
				}
				if len(dp.Reasons) > 0 {
					b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(reasonFlags(dp.Reasons)) })
				}
				if !dp.CRLIssuer.empty() {
					b.AddASN1(cbasn1.Tag(2).ContextSpecific().Constructed(), dp.CRLIssuer.add)
				}
			})
		}
	})
	return b.BytesOrPanic()
}

// CertDPs returns a cRLDistributionPoints certificate extension (use it in
// Template.ExtraExtensions instead of CRLURLs).
func CertDPs(dps ...DP) pkix.Extension {
	return pkix.Extension{Id: OIDCRLDistPoints, Value: distributionPoints(dps)}
}

// CertFreshest returns a freshestCRL certificate extension.
func CertFreshest(dps ...DP) pkix.Extension {
	return pkix.Extension{Id: OIDFreshestCRL, Value: distributionPoints(dps)}
}

// Freshest returns a freshestCRL CRL extension.
func Freshest(dps ...DP) Extension {
	return Extension{ID: OIDFreshestCRL, Value: distributionPoints(dps)}
}

// CertificateIssuer returns the critical certificateIssuer entry extension
// naming the DER Name dn.
func CertificateIssuer(dn []byte) Extension {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, Names{DNs: [][]byte{dn}}.add)
	return Extension{ID: OIDCertificateIssuer, Critical: true, Value: b.BytesOrPanic()}
}
