// Package crl is the project's one CRL engine: a streaming parser for
// X.509 CRLs (DER or PEM) that visits revoked entries one at a time without
// materialising them, digests the TBSCertList while reading it, and
// verifies the signature afterwards (RSA PKCS#1 v1.5, RSA-PSS, ECDSA,
// Ed25519). Memory use is bounded by the largest single element, not by
// the number of entries. Errors wrap gpg-error codes (gpgerr.Code) so that
// callers can put them on the wire unchanged.
package crl

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// Limits bound what Parse accepts. Zero fields get the defaults.
type Limits struct {
	MaxBytes   int64 // whole CRL (DER); default 512 MiB
	MaxEntries int64 // revoked entries; default 50 million
}

// Default limits.
const (
	DefaultMaxBytes   = 512 << 20
	DefaultMaxEntries = 50_000_000
	maxEntryBytes     = 64 << 10 // one revokedCertificates entry
	maxSmallElement   = 1 << 20  // issuer, extensions, signature
)

// Entry is one revoked certificate. Serial is only valid during the visit
// callback; copy it to keep it.
type Entry struct {
	Serial    []byte // DER INTEGER content octets
	RevokedAt time.Time
	Reason    Reason
	// CertIssuer is the certificate issuer of an indirect CRL's entry
	// (certificateIssuer entry extension, RFC 5280 §5.3.3), carried over
	// from the last entry that had one; "" means the CRL issuer.
	// CertIssuerRaw is its Name DER and CertIssuerHash its issuer hash.
	CertIssuer     string
	CertIssuerRaw  []byte
	CertIssuerHash string
	InvalidityDate time.Time // zero when absent
}

// Reason is a set of revocation reasons, as libksba's ksba_crl_reason_t:
// one bit per RFC 5280 CRLReason.
type Reason uint16

// Reason bits.
const (
	ReasonUnspecified          Reason = 0x01
	ReasonKeyCompromise        Reason = 0x02
	ReasonCACompromise         Reason = 0x04
	ReasonAffiliationChanged   Reason = 0x08
	ReasonSuperseded           Reason = 0x10
	ReasonCessationOfOperation Reason = 0x20
	ReasonCertificateHold      Reason = 0x40
	ReasonRemoveFromCRL        Reason = 0x100
	ReasonPrivilegeWithdrawn   Reason = 0x200
	ReasonAACompromise         Reason = 0x400
	ReasonOther                Reason = 0x8000
)

// reasonFromCode maps an RFC 5280 CRLReason value to its bit.
func reasonFromCode(c int64) Reason {
	switch c {
	case 0:
		return ReasonUnspecified
	case 1:
		return ReasonKeyCompromise
	case 2:
		return ReasonCACompromise
	case 3:
		return ReasonAffiliationChanged
	case 4:
		return ReasonSuperseded
	case 5:
		return ReasonCessationOfOperation
	case 6:
		return ReasonCertificateHold
	case 8:
		return ReasonRemoveFromCRL
	case 9:
		return ReasonPrivilegeWithdrawn
	case 10:
		return ReasonAACompromise
	}
	return ReasonOther
}

// Info is what a CRL says about itself, available once Parse returns.
type Info struct {
	Version    int // 1 or 2
	RawIssuer  []byte
	Issuer     string // libksba rendering
	IssuerHash string
	ThisUpdate time.Time
	NextUpdate time.Time // zero when absent
	Number     *big.Int  // nil when absent
	// Authority key identifier parts (nil when absent).
	AKIKeyID  []byte
	AKIIssuer []string // directoryName entries rendered as DNs
	AKISerial []byte
	// IDP is the issuingDistributionPoint (nil when absent); RawIDP is
	// its extnValue, whose hash names the CRL's scope.
	IDP    *IDP
	RawIDP []byte
	// DeltaBase is the BaseCRLNumber of a delta CRL (deltaCRLIndicator);
	// nil for a full CRL.
	DeltaBase *big.Int
	// Freshest lists where the delta CRLs for this CRL are (freshestCRL).
	Freshest []DistributionPoint
	// IndirectEntries counts the entries whose certificateIssuer is not
	// the CRL issuer (only allowed in an indirect CRL).
	IndirectEntries int64
	// UnknownCritical lists critical CRL extensions this engine does not
	// understand.
	UnknownCritical []string
	Entries         int64
	Size            int64 // DER bytes

	sigAlg    []byte
	scheme    sigScheme
	digest    []byte // hash of the TBS, or the whole TBS for Ed25519
	signature []byte
	// sigPartial: the signature BIT STRING has unused bits.
	sigPartial bool
}

// IsDelta reports whether the CRL is a delta CRL.
func (in *Info) IsDelta() bool { return in.DeltaBase != nil }

// BaseNumberHex returns the delta CRL's BaseCRLNumber as NumberHex does,
// or "" for a full CRL.
func (in *Info) BaseNumberHex() string { return hexNumber(in.DeltaBase) }

// NumberHex returns the CRL number as uppercase hex with an even number of
// digits ("01"), or "" when the CRL has none.
func (in *Info) NumberHex() string { return hexNumber(in.Number) }

func hexNumber(n *big.Int) string {
	if n == nil {
		return ""
	}
	s := strings.ToUpper(n.Text(16))
	if len(s)%2 == 1 {
		s = "0" + s
	}
	return s
}

// wrapped errors for the classes of failure.
func errBER(format string, args ...any) error {
	return fmt.Errorf("crl: "+format+": %w", append(args, gpgerr.ErrBadBER)...)
}
func errInvalid(format string, args ...any) error {
	return fmt.Errorf("crl: "+format+": %w", append(args, gpgerr.ErrInvCRL)...)
}

// ErrTooLarge is wrapped by errors about CRLs exceeding the Limits.
var ErrTooLarge = fmt.Errorf("crl: CRL exceeds the configured limit: %w", gpgerr.ErrTooLarge)

// Parse reads a CRL from r, calling visit for every revoked entry in
// order, and returns its Info. The signature is not checked: call Verify
// with the issuer's key. Parse fails on malformed or oversized input, on
// unsupported versions, on duplicate or unknown critical entry extensions,
// on trailing data after a DER CRL, and when visit fails.
func Parse(r io.Reader, lim Limits, visit func(*Entry) error) (*Info, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultMaxEntries
	}
	br := bufio.NewReaderSize(r, 256<<10)
	isPEM := false
	// Skip leading white space, then decide between DER and PEM.
	for {
		b, err := br.Peek(1)
		if err != nil {
			if err == io.EOF {
				return nil, errBER("empty input")
			}
			return nil, fmt.Errorf("crl: reading: %w", err)
		}
		if b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n' {
			br.ReadByte()
			continue
		}
		if b[0] != 0x30 {
			der, err := openPEM(br, lim.MaxBytes)
			if err != nil {
				return nil, err
			}
			br, isPEM = bufio.NewReaderSize(der, 64<<10), true
		}
		break
	}
	d := &derReader{r: br, max: lim.MaxBytes}
	info, err := parseDER(d, lim, visit)
	if err != nil {
		return nil, err
	}
	// Nothing may follow the CertificateList (in a PEM block: and the
	// block must end with its END line).
	if _, err := br.ReadByte(); err == nil {
		return nil, errInvalid("trailing data after the CRL")
	} else if isPEM && err != io.EOF {
		return nil, err
	}
	return info, nil
}

func parseDER(d *derReader, lim Limits, visit func(*Entry) error) (*Info, error) {
	info := &Info{}
	tag, outerLen, _, err := d.header()
	if err == nil && tag != 0x30 {
		err = errBER("CertificateList: not a SEQUENCE")
	}
	if err != nil {
		return nil, err
	}
	outerStart := d.n
	info.Size = outerStart + outerLen
	if info.Size > lim.MaxBytes {
		return nil, ErrTooLarge
	}
	tag, tbsLen, tbsHdr, err := d.header()
	if err == nil && tag != 0x30 {
		err = errBER("TBSCertList: not a SEQUENCE")
	}
	if err != nil {
		return nil, err
	}
	tbsEnd := d.n + tbsLen
	h, err := parseTBSHead(d, info, tbsHdr, tbsLen)
	if err != nil {
		return nil, err
	}
	// issuer, thisUpdate, nextUpdate; then the header of what follows
	tag, l, err := parseIssuerTimes(d, info, tbsEnd)
	if err != nil {
		return nil, err
	}
	// revokedCertificates
	if tag == 0x30 {
		end := d.n + l
		if end > tbsEnd {
			return nil, errBER("revokedCertificates overruns the TBSCertList")
		}
		if err := parseEntries(d, info, lim, visit, end); err != nil {
			return nil, err
		}
		if d.n != end {
			return nil, errBER("revokedCertificates length mismatch")
		}
		tag, l = 0, 0
		if d.n < tbsEnd {
			if tag, l, _, err = d.header(); err != nil {
				return nil, err
			}
		}
	}
	// crlExtensions [0] EXPLICIT
	if tag == 0xa0 {
		body, err := d.body(l, maxSmallElement)
		if err != nil {
			return nil, err
		}
		if err := info.parseExtensions(body); err != nil {
			return nil, err
		}
	} else if tag != 0 {
		return nil, errBER("unexpected tag 0x%02x in TBSCertList", tag)
	}
	if d.n != tbsEnd {
		return nil, errBER("TBSCertList length mismatch")
	}
	d.hashTo(nil)
	if h != nil {
		info.digest = h.Sum(nil)
	} else {
		info.digest = info.scheme.buf.Bytes()
	}
	// signatureAlgorithm, signatureValue
	if err := parseSignature(d, info); err != nil {
		return nil, err
	}
	if d.n != outerStart+outerLen {
		return nil, errBER("CertificateList length mismatch")
	}
	return info, nil
}

func asn1Wrap(tag byte, content []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.Tag(tag), func(b *cryptobyte.Builder) { b.AddBytes(content) })
	return b.BytesOrPanic()
}

func (d *derReader) time(tag byte, l int64) (time.Time, error) {
	if tag != 0x17 && tag != 0x18 {
		return time.Time{}, errBER("expected a time, got tag 0x%02x", tag)
	}
	b, err := d.body(l, 32)
	if err != nil {
		return time.Time{}, err
	}
	return parseTime(tag, b)
}

// parseTime parses the contents of a UTCTime (tag 0x17, YYMMDDHHMMSSZ) or
// GeneralizedTime (0x18, YYYYMMDDHHMMSSZ) in their DER forms, without
// allocating.
func parseTime(tag byte, b []byte) (time.Time, error) {
	num := func(p []byte) (int, bool) {
		n := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	var year int
	var rest []byte
	ok := true
	switch {
	case tag == 0x17 && len(b) == 13:
		year, ok = num(b[:2])
		if year < 50 {
			year += 2000
		} else {
			year += 1900
		}
		rest = b[2:]
	case tag == 0x18 && len(b) == 15:
		year, ok = num(b[:4])
		rest = b[4:]
	default:
		return time.Time{}, errBER("malformed time %q", b)
	}
	mon, ok1 := num(rest[0:2])
	day, ok2 := num(rest[2:4])
	hh, ok3 := num(rest[4:6])
	mm, ok4 := num(rest[6:8])
	ss, ok5 := num(rest[8:10])
	if !ok || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || rest[10] != 'Z' ||
		mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, errBER("malformed time %q", b)
	}
	if day > daysIn(year, mon) {
		return time.Time{}, errBER("malformed time %q", b)
	}
	// time.Unix(…).UTC() is the same Time as time.Date(…, time.UTC),
	// without the calendar and location work (a few million calls per
	// large CRL).
	secs := daysFromCivil(year, mon, day)*86400 + int64(hh*3600+mm*60+ss)
	return time.Unix(secs, 0).UTC(), nil
}

// daysIn returns the number of days of month mon (1–12) of year.
func daysIn(year, mon int) int {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic
// Gregorian date (H. Hinnant's days_from_civil).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 { // January/February of year 0000
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// SerialHex formats raw serial content octets as uppercase hex.
func SerialHex(serial []byte) string { return strings.ToUpper(hex.EncodeToString(serial)) }

// readCritical reads the optional "critical BOOLEAN DEFAULT FALSE" of an
// extension.
func readCritical(s *cryptobyte.String, critical *bool) bool {
	*critical = false
	if !s.PeekASN1Tag(cbasn1.BOOLEAN) {
		return true
	}
	return s.ReadASN1Boolean(critical)
}

// parseEntries visits the revokedCertificates up to end.
func parseEntries(d *derReader, info *Info, lim Limits, visit func(*Entry) error, end int64) error {
	var e Entry
	for d.n < end {
		if info.Entries >= lim.MaxEntries {
			return fmt.Errorf("crl: more than %d entries: %w", lim.MaxEntries, ErrTooLarge)
		}
		body, err := d.element(0x30, maxEntryBytes, "revoked entry")
		if err != nil {
			return err
		}
		if err := parseEntry(body, &e); err != nil {
			return fmt.Errorf("entry %d: %w", info.Entries+1, err)
		}
		if e.CertIssuer == info.Issuer {
			e.CertIssuer, e.CertIssuerRaw, e.CertIssuerHash = "", nil, ""
		}
		if e.CertIssuer != "" {
			info.IndirectEntries++
		}
		info.Entries++
		if visit != nil {
			if err := visit(&e); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseSignature reads signatureAlgorithm (which must repeat the TBS's)
// and signatureValue.
func parseSignature(d *derReader, info *Info) error {
	tag, l, hdr, err := d.header()
	if err != nil {
		return err
	}
	if tag != 0x30 {
		return errBER("signatureAlgorithm: not a SEQUENCE")
	}
	outerAlg, err := d.body(l, 1024)
	if err != nil {
		return err
	}
	if !bytes.Equal(append(append([]byte(nil), hdr...), outerAlg...), info.sigAlg) {
		return errInvalid("signature algorithm differs from the one in the TBSCertList")
	}
	sig, err := d.element(0x03, 64<<10, "signatureValue")
	if err != nil {
		return err
	}
	if len(sig) < 2 || sig[0] > 7 {
		return errBER("signatureValue: bad BIT STRING")
	}
	// A signature that is not a whole number of octets cannot verify
	// (PKITS 4.4.4): that is a bad signature, found by Verify, not a
	// malformed CRL.
	info.sigPartial = sig[0] != 0
	info.signature = append([]byte(nil), sig[1:]...)
	return nil
}

// parseTBSHead reads the TBSCertList's optional version and its signature
// algorithm, and starts hashing the TBS (its header included) with the
// algorithm's hash; nil for Ed25519, whose TBS is kept whole instead.
func parseTBSHead(d *derReader, info *Info, tbsHdr []byte, tbsLen int64) (hash.Hash, error) {
	prefix := append([]byte(nil), tbsHdr...)
	tag, l, hdr, err := d.header()
	if err != nil {
		return nil, err
	}
	info.Version = 1
	if tag == 0x02 {
		v, err := d.body(l, 8)
		if err != nil {
			return nil, err
		}
		prefix = append(append(prefix, hdr...), v...)
		switch {
		case len(v) == 1 && v[0] == 1:
			info.Version = 2
		case len(v) == 1 && v[0] == 0:
		default:
			return nil, fmt.Errorf("crl: version %x: %w", v, gpgerr.ErrUnsupportedCRLVersion)
		}
		if tag, l, hdr, err = d.header(); err != nil {
			return nil, err
		}
	}
	if tag != 0x30 {
		return nil, errBER("signature algorithm: not a SEQUENCE")
	}
	alg, err := d.body(l, 1024)
	if err != nil {
		return nil, err
	}
	info.sigAlg = append(append([]byte(nil), hdr...), alg...)
	prefix = append(prefix, info.sigAlg...)
	sch, err := parseSigAlg(info.sigAlg)
	if err != nil {
		return nil, err
	}
	info.scheme = sch
	if sch.hash == 0 {
		info.scheme.buf = &bytes.Buffer{}
		if tbsLen > 64<<20 {
			return nil, errInvalid("Ed25519 CRLs larger than 64 MiB are not supported")
		}
		info.scheme.buf.Write(prefix)
		d.hashTo(info.scheme.buf)
		return nil, nil
	}
	h := sch.hash.New()
	h.Write(prefix)
	d.hashTo(h)
	return h, nil

}

// parseIssuerTimes reads the issuer, thisUpdate and the optional
// nextUpdate, and returns the header of the next element (tag 0 at the
// end of the TBSCertList).
func parseIssuerTimes(d *derReader, info *Info, tbsEnd int64) (tag byte, l int64, err error) {
	// issuer
	name, err := d.element(0x30, maxSmallElement, "issuer")
	if err != nil {
		return 0, 0, err
	}
	info.RawIssuer = asn1Wrap(0x30, name)
	if info.Issuer, err = certid.DN(info.RawIssuer); err != nil {
		return 0, 0, errBER("issuer name")
	}
	info.IssuerHash = certid.Hash(info.Issuer)

	// thisUpdate, nextUpdate
	tag, l, _, err = d.header()
	if err != nil {
		return 0, 0, err
	}
	if info.ThisUpdate, err = d.time(tag, l); err != nil {
		return 0, 0, fmt.Errorf("thisUpdate: %w", err)
	}
	if d.n < tbsEnd {
		if tag, l, _, err = d.header(); err != nil {
			return 0, 0, err
		}
		if tag == 0x17 || tag == 0x18 {
			if info.NextUpdate, err = d.time(tag, l); err != nil {
				return 0, 0, fmt.Errorf("nextUpdate: %w", err)
			}
			tag, l = 0, 0
			if d.n < tbsEnd {
				if tag, l, _, err = d.header(); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	return tag, l, nil
}
