package crl

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	_ "crypto/sha1" // registered for SHA-1 signed CRLs
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/asn1"
	"fmt"

	"github.com/dirmngr/dirmngr/gpgerr"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

type sigKind int

const (
	kindRSA sigKind = iota + 1
	kindPSS
	kindECDSA
	kindEd25519
)

type sigScheme struct {
	kind sigKind
	hash crypto.Hash // 0 for Ed25519
	salt int
	buf  *bytes.Buffer
}

var (
	oidRSASHA1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidRSASHA256   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSASHA384   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSASHA512   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSASHA224   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 14}
	oidRSAPSS      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSASHA1   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
	oidECDSASHA224 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 1}
	oidECDSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519     = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSHA1        = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

func errDigest(format string, args ...any) error {
	return fmt.Errorf("crl: "+format+": %w", append(args, gpgerr.ErrDigestAlgo)...)
}

// simpleSchemes are the signature algorithms without parameters, by OID.
var simpleSchemes = map[string]sigScheme{
	oidRSASHA1.String():     {kind: kindRSA, hash: crypto.SHA1},
	oidRSASHA224.String():   {kind: kindRSA, hash: crypto.SHA224},
	oidRSASHA256.String():   {kind: kindRSA, hash: crypto.SHA256},
	oidRSASHA384.String():   {kind: kindRSA, hash: crypto.SHA384},
	oidRSASHA512.String():   {kind: kindRSA, hash: crypto.SHA512},
	oidECDSASHA1.String():   {kind: kindECDSA, hash: crypto.SHA1},
	oidECDSASHA224.String(): {kind: kindECDSA, hash: crypto.SHA224},
	oidECDSASHA256.String(): {kind: kindECDSA, hash: crypto.SHA256},
	oidECDSASHA384.String(): {kind: kindECDSA, hash: crypto.SHA384},
	oidECDSASHA512.String(): {kind: kindECDSA, hash: crypto.SHA512},
	oidEd25519.String():     {kind: kindEd25519},
}

// parseSigAlg maps an AlgorithmIdentifier (full TLV) to a scheme.
func parseSigAlg(der []byte) (sigScheme, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return sigScheme{}, errBER("signature algorithm")
	}
	if sch, ok := simpleSchemes[oid.String()]; ok {
		return sch, nil
	}
	if !oid.Equal(oidRSAPSS) {
		return sigScheme{}, errDigest("unsupported signature algorithm %s", oid)
	}
	return parsePSSParams(seq)
}

// parsePSSParams reads RSASSA-PSS-params: hashAlgorithm [0],
// maskGenAlgorithm [1], saltLength [2], trailerField [3]; defaults SHA-1,
// MGF1-SHA-1, 20.
func parsePSSParams(seq cryptobyte.String) (sigScheme, error) {
	var params cryptobyte.String
	if !seq.ReadASN1(&params, cbasn1.SEQUENCE) {
		return sigScheme{}, errBER("RSA-PSS parameters")
	}
	sch := sigScheme{kind: kindPSS, hash: crypto.SHA1, salt: 20}
	var hashSeq, mgfSeq cryptobyte.String
	var present bool
	if !params.ReadOptionalASN1(&hashSeq, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return sigScheme{}, errBER("RSA-PSS hash")
	}
	if present {
		h, err := hashFromAlgID(hashSeq)
		if err != nil {
			return sigScheme{}, err
		}
		sch.hash = h
	}
	mgfHash := crypto.SHA1
	if !params.ReadOptionalASN1(&mgfSeq, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return sigScheme{}, errBER("RSA-PSS MGF")
	}
	if present {
		var inner cryptobyte.String
		var mgfOID asn1.ObjectIdentifier
		if !mgfSeq.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1ObjectIdentifier(&mgfOID) || !mgfOID.Equal(oidMGF1) {
			return sigScheme{}, errDigest("unsupported RSA-PSS mask generation")
		}
		h, err := hashFromAlgID(inner)
		if err != nil {
			return sigScheme{}, err
		}
		mgfHash = h
	}
	var saltSeq cryptobyte.String
	if !params.ReadOptionalASN1(&saltSeq, &present, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return sigScheme{}, errBER("RSA-PSS salt")
	}
	if present {
		var salt int64
		if !saltSeq.ReadASN1Int64WithTag(&salt, cbasn1.INTEGER) || salt < 0 || salt > 1024 {
			return sigScheme{}, errBER("RSA-PSS salt length")
		}
		sch.salt = int(salt)
	}
	if mgfHash != sch.hash {
		return sigScheme{}, errDigest("RSA-PSS with different hash and MGF hash")
	}
	if sch.salt != sch.hash.Size() {
		// GnuPG's restriction: salt length equals the hash length.
		return sigScheme{}, errDigest("RSA-PSS salt length %d differs from the hash length", sch.salt)
	}
	return sch, nil
}

// hashFromAlgID reads "SEQUENCE { OID, NULL? }" contents' OID from s, which
// is the contents of an explicitly tagged AlgorithmIdentifier.
func hashFromAlgID(s cryptobyte.String) (crypto.Hash, error) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return 0, errBER("hash algorithm")
	}
	switch {
	case oid.Equal(oidSHA1):
		return crypto.SHA1, nil
	case oid.Equal(oidSHA224):
		return crypto.SHA224, nil
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, errDigest("unsupported hash %s", oid)
}

// Verify checks the CRL's signature with pub, the CRL issuer's public key.
// A mismatch wraps gpgerr.ErrBadSignature.
func (in *Info) Verify(pub crypto.PublicKey) error {
	bad := fmt.Errorf("crl: signature of %q does not verify: %w", in.Issuer, gpgerr.ErrBadSignature)
	if in.sigPartial {
		return bad
	}
	switch in.scheme.kind {
	case kindRSA, kindPSS:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("crl: RSA signature but a %T issuer key: %w", pub, gpgerr.ErrBadSignature)
		}
		var err error
		if in.scheme.kind == kindPSS {
			err = rsa.VerifyPSS(k, in.scheme.hash, in.digest, in.signature, &rsa.PSSOptions{SaltLength: in.scheme.salt, Hash: in.scheme.hash})
		} else {
			err = rsa.VerifyPKCS1v15(k, in.scheme.hash, in.digest, in.signature)
		}
		if err != nil {
			return bad
		}
	case kindECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("crl: ECDSA signature but a %T issuer key: %w", pub, gpgerr.ErrBadSignature)
		}
		if !ecdsa.VerifyASN1(k, in.digest, in.signature) {
			return bad
		}
	case kindEd25519:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("crl: Ed25519 signature but a %T issuer key: %w", pub, gpgerr.ErrBadSignature)
		}
		if !ed25519.Verify(k, in.digest, in.signature) {
			return bad
		}
	default:
		return errDigest("no signature scheme")
	}
	return nil
}
