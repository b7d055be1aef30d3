package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Well-known OIDs used by the CRL builder.
var (
	OIDReasonCode     = asn1.ObjectIdentifier{2, 5, 29, 21}
	OIDCRLNumber      = asn1.ObjectIdentifier{2, 5, 29, 20}
	OIDAuthorityKeyID = asn1.ObjectIdentifier{2, 5, 29, 35}
	OIDIssuingDP      = asn1.ObjectIdentifier{2, 5, 29, 28}
	OIDDeltaCRL       = asn1.ObjectIdentifier{2, 5, 29, 27}
)

// Reason codes (RFC 5280 CRLReason).
const (
	ReasonNone                 = -1
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
)

// Entry is one revoked certificate.
type Entry struct {
	Serial     *big.Int // or RawSerial
	RawSerial  []byte   // INTEGER content octets, used verbatim when set
	Time       time.Time
	Reason     int // ReasonNone for no reasonCode extension
	Extensions []Extension
}

// Extension is an extension with its already encoded value.
type Extension struct {
	ID       asn1.ObjectIdentifier
	Critical bool
	Value    []byte
}

// CRLSpec describes a CRL to build.
type CRLSpec struct {
	Issuer     *Cert // signer; its subject is the CRL issuer unless IssuerName is set
	IssuerName []byte
	Version    int // 1 or 2 (default 2)
	ThisUpdate time.Time
	NextUpdate time.Time // zero: field omitted
	Number     *big.Int  // nil: no cRLNumber
	NoAKI      bool      // omit authorityKeyIdentifier
	Entries    []Entry
	// Count and Gen generate entries without holding them all (big CRLs);
	// used when Entries is nil.
	Count int
	Gen   func(i int) Entry
	// Extensions are appended to the CRL extensions.
	Extensions []Extension
	// BadSignature flips a bit of the signature.
	BadSignature bool
	// Trailing is appended after the CertificateList.
	Trailing []byte
}

// Build encodes and signs the CRL described by s and returns its DER.
func (s *CRLSpec) Build() []byte {
	if s.ThisUpdate.IsZero() {
		s.ThisUpdate = time.Now().Add(-time.Hour)
	}
	alg := algorithmIdentifier(s.Issuer.KeyType)
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if s.Version != 1 {
			b.AddASN1Int64(1)
		}
		b.AddBytes(alg)
		if s.IssuerName != nil {
			b.AddBytes(s.IssuerName)
		} else {
			b.AddBytes(s.Issuer.Cert.RawSubject)
		}
		addTime(b, s.ThisUpdate)
		if !s.NextUpdate.IsZero() {
			addTime(b, s.NextUpdate)
		}
		n := len(s.Entries)
		if s.Entries == nil {
			n = s.Count
		}
		if n > 0 {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for i := range n {
					var e Entry
					if s.Entries != nil {
						e = s.Entries[i]
					} else {
						e = s.Gen(i)
					}
					addEntry(b, e)
				}
			})
		}
		var exts []Extension
		if !s.NoAKI && len(s.Issuer.Cert.SubjectKeyId) > 0 {
			var aki cryptobyte.Builder
			aki.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddBytes(s.Issuer.Cert.SubjectKeyId)
				})
			})
			exts = append(exts, Extension{ID: OIDAuthorityKeyID, Value: aki.BytesOrPanic()})
		}
		if s.Number != nil {
			v, _ := asn1.Marshal(s.Number)
			exts = append(exts, Extension{ID: OIDCRLNumber, Value: v})
		}
		exts = append(exts, s.Extensions...)
		if len(exts) > 0 && s.Version != 1 {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				addExtensions(b, exts)
			})
		}
	})
	tbsDER := tbs.BytesOrPanic()
	sig := Sign(s.Issuer, tbsDER)
	if s.BadSignature {
		sig[len(sig)/2] ^= 0x01
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		b.AddBytes(alg)
		b.AddASN1BitString(sig)
	})
	der := out.BytesOrPanic()
	return append(der, s.Trailing...)
}

// PEM wraps a DER CRL in an X509 CRL PEM block.
func PEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

func addEntry(b *cryptobyte.Builder, e Entry) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if e.RawSerial != nil {
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(e.RawSerial) })
		} else {
			b.AddASN1BigInt(e.Serial)
		}
		t := e.Time
		if t.IsZero() {
			t = time.Now().Add(-time.Hour)
		}
		addTime(b, t)
		exts := e.Extensions
		if e.Reason >= 0 && e.Reason != ReasonNone {
			exts = append([]Extension{{ID: OIDReasonCode, Value: []byte{0x0a, 0x01, byte(e.Reason)}}}, exts...)
		}
		if len(exts) > 0 {
			addExtensions(b, exts)
		}
	})
}

func addExtensions(b *cryptobyte.Builder, exts []Extension) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, x := range exts {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(x.ID)
				if x.Critical {
					b.AddASN1Boolean(true)
				}
				b.AddASN1OctetString(x.Value)
			})
		}
	})
}

func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC().Truncate(time.Second)
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
	} else {
		b.AddASN1GeneralizedTime(t)
	}
}

var (
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSAPSS        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidECDSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidEd25519       = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func algorithmIdentifier(kt KeyType) []byte {
	var b cryptobyte.Builder
	sha256Alg := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidSHA256)
			b.AddASN1NULL()
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		switch kt {
		case RSAPSS:
			b.AddASN1ObjectIdentifier(oidRSAPSS)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), sha256Alg)
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						sha256Alg(b)
					})
				})
				b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1Int64(32)
				})
			})
		case ECDSA:
			b.AddASN1ObjectIdentifier(oidECDSASHA256)
		case Ed25519:
			b.AddASN1ObjectIdentifier(oidEd25519)
		default:
			b.AddASN1ObjectIdentifier(oidSHA256WithRSA)
			b.AddASN1NULL()
		}
	})
	return b.BytesOrPanic()
}

// Sign signs data with c's key the way its KeyType prescribes.
func Sign(c *Cert, data []byte) []byte {
	var (
		sig []byte
		err error
	)
	switch k := c.Key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, data)
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(data)
		sig, err = ecdsa.SignASN1(rand.Reader, k, h[:])
	case *rsa.PrivateKey:
		h := sha256.Sum256(data)
		if c.KeyType == RSAPSS {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
		}
	default:
		err = fmt.Errorf("unsupported key %T", c.Key)
	}
	if err != nil {
		panic(fmt.Sprintf("testpki: signing: %v", err))
	}
	return sig
}
