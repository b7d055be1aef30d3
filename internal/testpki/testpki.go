// Package testpki generates certificate authorities, end-entity
// certificates and CRLs for tests and benchmarks. Everything is created in
// memory at test time; nothing is read from fixtures. CRLs are built with
// cryptobyte rather than x509.CreateRevocationList so that tests can produce
// what the standard library refuses to (duplicate serials, unknown critical
// extensions, trailing garbage, millions of entries).
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// KeyType selects the key (and signature) algorithm of a CA.
type KeyType int

// Key types a CA can use.
const (
	RSA     KeyType = iota // RSA-2048, PKCS#1 v1.5 with SHA-256
	RSAPSS                 // RSA-2048, RSASSA-PSS with SHA-256
	ECDSA                  // P-256, ECDSA with SHA-256
	Ed25519                // Ed25519
)

var (
	rsaMu   sync.Mutex
	rsaKeys []*rsa.PrivateKey
	rsaNext int
)

// rsaPool is the number of distinct RSA keys generated per process; after
// that keys are reused round robin (RSA key generation dominates test time
// otherwise). Certificates sharing a key share a subject key identifier.
const rsaPool = 16

// rsaKey hands out RSA keys, generating new ones until the pool is full.
func rsaKey() *rsa.PrivateKey {
	rsaMu.Lock()
	defer rsaMu.Unlock()
	if len(rsaKeys) < rsaPool {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(fmt.Sprintf("testpki: generating RSA key: %v", err))
		}
		rsaKeys = append(rsaKeys, k)
		return k
	}
	k := rsaKeys[rsaNext%len(rsaKeys)]
	rsaNext++
	return k
}

// NewKey returns a fresh private key of type kt.
func NewKey(kt KeyType) crypto.Signer {
	switch kt {
	case ECDSA:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	default:
		return rsaKey()
	}
}

func sigAlg(kt KeyType) x509.SignatureAlgorithm {
	switch kt {
	case RSAPSS:
		return x509.SHA256WithRSAPSS
	case ECDSA:
		return x509.ECDSAWithSHA256
	case Ed25519:
		return x509.PureEd25519
	default:
		return x509.SHA256WithRSA
	}
}

// Cert is a certificate with, when we issued it, its private key.
type Cert struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	KeyType KeyType
}

// DER returns the certificate's DER encoding.
func (c *Cert) DER() []byte { return c.Cert.Raw }

// PEM returns the certificate PEM encoded.
func (c *Cert) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// Fingerprint returns the SHA-1 fingerprint as 40 uppercase hex digits.
func (c *Cert) Fingerprint() string { return fmt.Sprintf("%X", sha1.Sum(c.Cert.Raw)) }

// Template describes a certificate to issue. Zero fields get defaults.
type Template struct {
	Subject    pkix.Name
	RawSubject []byte   // overrides Subject when set (hand-built names)
	Serial     *big.Int // default: random 64-bit
	NotBefore  time.Time
	NotAfter   time.Time
	IsCA       bool
	KeyType    KeyType
	CRLURLs    []string // CRL distribution points
	OCSPURLs   []string // authorityInfoAccess OCSP
	KeyUsage   x509.KeyUsage
	ExtKeyUse  []x509.ExtKeyUsage
	Email      []string
	DNSNames   []string
	IPs        []net.IP
	// ExtraExtensions are added verbatim (e.g. unknown critical ones).
	ExtraExtensions []pkix.Extension
}

// nextSerial returns a random positive 63-bit serial number, so that
// generated certificates never collide with the small serials tests choose.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err)
	}
	return n.Add(n, new(big.Int).Lsh(big.NewInt(1), 62))
}

func (t *Template) x509(now time.Time) *x509.Certificate {
	c := &x509.Certificate{
		Subject:               t.Subject,
		RawSubject:            t.RawSubject,
		SerialNumber:          t.Serial,
		NotBefore:             t.NotBefore,
		NotAfter:              t.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  t.IsCA,
		CRLDistributionPoints: t.CRLURLs,
		OCSPServer:            t.OCSPURLs,
		KeyUsage:              t.KeyUsage,
		ExtKeyUsage:           t.ExtKeyUse,
		EmailAddresses:        t.Email,
		DNSNames:              t.DNSNames,
		IPAddresses:           t.IPs,
		ExtraExtensions:       t.ExtraExtensions,
	}
	if c.SerialNumber == nil {
		c.SerialNumber = nextSerial()
	}
	if c.NotBefore.IsZero() {
		c.NotBefore = now.Add(-24 * time.Hour)
	}
	if c.NotAfter.IsZero() {
		c.NotAfter = now.Add(365 * 24 * time.Hour)
	}
	if c.KeyUsage == 0 {
		if t.IsCA {
			c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		} else {
			c.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		}
	}
	return c
}

// NewRoot creates a self-signed root CA.
func NewRoot(t Template) *Cert {
	t.IsCA = true
	key := NewKey(t.KeyType)
	tmpl := t.x509(time.Now())
	tmpl.SignatureAlgorithm = sigAlg(t.KeyType)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(fmt.Sprintf("testpki: creating root: %v", err))
	}
	return parsed(der, key, t.KeyType)
}

// Issue creates a certificate signed by ca. The new certificate's key has
// type t.KeyType; the signature uses the CA's key type.
func (ca *Cert) Issue(t Template) *Cert {
	key := NewKey(t.KeyType)
	tmpl := t.x509(time.Now())
	tmpl.SignatureAlgorithm = sigAlg(ca.KeyType)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		panic(fmt.Sprintf("testpki: issuing %v: %v", t.Subject, err))
	}
	return parsed(der, key, t.KeyType)
}

func parsed(der []byte, key crypto.Signer, kt KeyType) *Cert {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(fmt.Sprintf("testpki: parsing generated certificate: %v", err))
	}
	return &Cert{Cert: c, Key: key, KeyType: kt}
}

// WriteFile writes data to dir/name and returns the path.
func WriteFile(dir, name string, data []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		panic(fmt.Sprintf("testpki: %v", err))
	}
	return p
}

// Name builds a pkix.Name from CN, O and C, the common case in tests.
func Name(cn, o, c string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if o != "" {
		n.Organization = []string{o}
	}
	if c != "" {
		n.Country = []string{c}
	}
	return n
}

// RawName encodes an RDNSequence given as a list of RDNs, each a list of
// (OID, ASN.1 value) pairs; it lets tests use string types and attributes
// that pkix.Name cannot express.
func RawName(rdns ...[]AttributeValue) []byte {
	var seq pkix.RDNSequence
	for _, rdn := range rdns {
		var set pkix.RelativeDistinguishedNameSET
		for _, av := range rdn {
			set = append(set, pkix.AttributeTypeAndValue{Type: av.Type, Value: av.Value})
		}
		seq = append(seq, set)
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		panic(fmt.Sprintf("testpki: encoding name: %v", err))
	}
	return der
}

// AttributeValue is one attribute of an RDN for RawName. Value may be an
// asn1.RawValue to choose the string type.
type AttributeValue struct {
	Type  asn1.ObjectIdentifier
	Value any
}

// String returns an asn1.RawValue of the given universal string tag
// (asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagBMPString…).
func String(tag int, content []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: content}
}

// KeyPEM returns the private key as a PKCS#8 PEM block.
func (c *Cert) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic(fmt.Sprintf("testpki: encoding key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
