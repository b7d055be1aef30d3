// Package certid computes the identifiers gpgsm and dirmngr use for
// certificates: the distinguished-name string as libksba renders it, the
// issuer hash (SHA-1 of that string) and the cert ID
// "<ISSUERHASH>.<SERIALHEX>" sent with ISVALID.
package certid

import (
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrBadName reports a distinguished name that is not valid DER.
var ErrBadName = errors.New("certid: malformed distinguished name")

// names maps the DER contents of the attribute OIDs libksba prints by name
// (the RFC 2253 set) to that name. Every other attribute is printed as a
// dotted OID with a hex value.
var names = map[string]string{
	"\x55\x04\x03": "CN",
	"\x55\x04\x06": "C",
	"\x55\x04\x07": "L",
	"\x55\x04\x08": "ST",
	"\x55\x04\x09": "STREET",
	"\x55\x04\x0a": "O",
	"\x55\x04\x0b": "OU",
	"\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x19": "DC",
	"\x09\x92\x26\x89\x93\xF2\x2C\x64\x01\x01": "UID",
}

// DN renders a DER-encoded Name (an RDNSequence, e.g. cert.RawIssuer) as
// libksba's RFC 2253 string: RDNs in reverse order separated by ",",
// multi-valued RDNs joined by "+", values quoted, unknown attributes as
// "<dotted-oid>=#<HEX>". The empty sequence gives "".
func DN(der []byte) (string, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return "", ErrBadName
	}
	var rdns []cryptobyte.String
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) {
			return "", ErrBadName
		}
		rdns = append(rdns, set)
	}
	var sb strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		set := rdns[i]
		first := true
		for !set.Empty() {
			var atv, oid cryptobyte.String
			var tag cbasn1.Tag
			var val cryptobyte.String
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) ||
				!atv.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) {
				return "", ErrBadName
			}
			if !first {
				sb.WriteByte('+')
			}
			first = false
			if err := appendATV(&sb, oid, tag, val); err != nil {
				return "", err
			}
		}
		if i > 0 {
			sb.WriteByte(',')
		}
	}
	return sb.String(), nil
}

func appendATV(sb *strings.Builder, oid []byte, tag cbasn1.Tag, val []byte) error {
	name, ok := names[string(oid)]
	useHex := false
	if ok {
		sb.WriteString(name)
	} else {
		s, err := oidString(oid)
		if err != nil {
			return err
		}
		sb.WriteString(s)
		useHex = true
	}
	sb.WriteByte('=')
	switch {
	case useHex:
		writeHex(sb, val)
	case tag == cbasn1.UTF8String:
		appendUTF8(sb, val)
	case tag == cbasn1.PrintableString || tag == cbasn1.IA5String || tag == cbasn1.T61String:
		appendLatin1(sb, val)
	case tag == cbasn1.Tag(28): // UniversalString
		appendUCS(sb, val, 4)
	case tag == cbasn1.Tag(30): // BMPString
		appendUCS(sb, val, 2)
	default:
		writeHex(sb, val)
	}
	return nil
}

func writeHex(sb *strings.Builder, b []byte) {
	sb.WriteByte('#')
	sb.WriteString(strings.ToUpper(hex.EncodeToString(b)))
}

// oidString renders DER OID contents in dotted decimal the way
// ksba_oid_to_str does.
func oidString(b []byte) (string, error) {
	if len(b) == 0 {
		return "", ErrBadName
	}
	var sb strings.Builder
	var v uint64
	first := true
	for i, c := range b {
		if v > (1<<57)-1 {
			return "", ErrBadName
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 != 0 {
			if i == len(b)-1 {
				return "", ErrBadName
			}
			continue
		}
		if first {
			first = false
			switch {
			case v < 40:
				sb.WriteString("0.")
			case v < 80:
				sb.WriteString("1.")
				v -= 40
			default:
				sb.WriteString("2.")
				v -= 80
			}
			sb.WriteString(strconv.FormatUint(v, 10))
		} else {
			sb.WriteByte('.')
			sb.WriteString(strconv.FormatUint(v, 10))
		}
		v = 0
	}
	return sb.String(), nil
}

// quoteASCII appends ASCII bytes with RFC 2253 quoting: the specials
// ,+"\<>; get a backslash, control characters and DEL become \XX.
func quoteASCII(sb *strings.Builder, b []byte) {
	for _, c := range b {
		switch {
		case c < ' ' || c > 126:
			fmt.Fprintf(sb, "\\%02X", c)
		case strings.IndexByte(",+\"\\<>;", c) >= 0:
			sb.WriteByte('\\')
			sb.WriteByte(c)
		default:
			sb.WriteByte(c)
		}
	}
}

// leadTrail handles the quoting of a leading blank or '#' and of a
// trailing blank and returns the remaining middle part plus the suffix to
// append after it.
func leadTrail(sb *strings.Builder, v []byte) ([]byte, string) {
	if len(v) > 0 && (v[0] == ' ' || v[0] == '#') {
		sb.WriteByte('\\')
		sb.WriteByte(v[0])
		v = v[1:]
	}
	// libksba writes the escaped trailing blank before the rest of the
	// value (a quirk reproduced for identical hashes).
	if len(v) > 0 && v[len(v)-1] == ' ' {
		sb.WriteString("\\ ")
		v = v[:len(v)-1]
	}
	return v, ""
}

// appendQuoted writes v (after leadTrail) with runs of ASCII quoted and
// each non-ASCII sequence written by other, which returns the rest.
func appendQuoted(sb *strings.Builder, v []byte, other func(v []byte) []byte) {
	v, _ = leadTrail(sb, v)
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] < 0x80 {
			i++
		}
		quoteASCII(sb, v[:i])
		if v = v[i:]; len(v) > 0 {
			v = other(v)
		}
	}
}

func appendUTF8(sb *strings.Builder, v []byte) {
	appendQuoted(sb, v, func(v []byte) []byte {
		c := v[0]
		var more int
		switch {
		case c&0xe0 == 0xc0:
			more = 1
		case c&0xf0 == 0xe0:
			more = 2
		case c&0xf8 == 0xf0:
			more = 3
		case c&0xfc == 0xf8:
			more = 4
		case c&0xfe == 0xfc:
			more = 5
		}
		if more == 0 {
			fmt.Fprintf(sb, "\\%02X", c)
			return v[1:]
		}
		n := 1
		for n < len(v) && n <= more && v[n]&0xc0 == 0x80 {
			n++
		}
		sb.Write(v[:n])
		return v[n:]
	})
}

func appendLatin1(sb *strings.Builder, v []byte) {
	appendQuoted(sb, v, func(v []byte) []byte {
		sb.WriteByte(0xc0 | (v[0]>>6)&3)
		sb.WriteByte(0x80 | v[0]&0x3f)
		return v[1:]
	})
}

// appendUCS renders BMPString (w=2) and UniversalString (w=4) values,
// including libksba's quirks: a value whose first character is not ASCII
// renders as a single 0xFF byte, and a dangling partial character is
// dropped.
func appendUCS(sb *strings.Builder, v []byte, w int) {
	isASCII := func(p []byte) bool {
		for _, c := range p[:w-1] {
			if c != 0 {
				return false
			}
		}
		return p[w-1]&0x80 == 0
	}
	if len(v) > w-1 && isASCII(v) && (v[w-1] == ' ' || v[w-1] == '#') {
		// libksba writes the first byte of the character (a zero) here.
		sb.WriteByte('\\')
		sb.WriteByte(v[0])
		v = v[w:]
	}
	if len(v) > w-1 && isASCII(v) && v[w-1] == ' ' {
		sb.WriteString("\\ ")
		v = v[:len(v)-w]
	}
	n := 0
	for {
		start := n
		for n+w-1 < len(v) && isASCII(v[n:]) {
			n += w
		}
		if n > start {
			ascii := make([]byte, 0, (n-start)/w)
			for j := start; j < n; j += w {
				ascii = append(ascii, v[j+w-1])
			}
			quoteASCII(sb, ascii)
		}
		if n >= len(v) {
			return
		}
		if n < w {
			sb.WriteByte(0xff)
			return
		}
		if n+w > len(v) {
			return
		}
		var c rune
		for j := range w {
			c = c<<8 | rune(v[n+j])
		}
		n += w
		writeRune(sb, uint32(c))
	}
}

// writeRune encodes c as libksba does, including the historical 5- and
// 6-byte forms for values beyond Unicode.
func writeRune(sb *strings.Builder, c uint32) {
	switch {
	case c < 1<<11:
		sb.WriteByte(byte(0xc0 | c>>6))
		sb.WriteByte(byte(0x80 | c&0x3f))
	case c < 1<<16:
		sb.WriteByte(byte(0xe0 | c>>12))
		sb.WriteByte(byte(0x80 | (c>>6)&0x3f))
		sb.WriteByte(byte(0x80 | c&0x3f))
	case c < 1<<21:
		sb.WriteByte(byte(0xf0 | c>>18))
		sb.WriteByte(byte(0x80 | (c>>12)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>6)&0x3f))
		sb.WriteByte(byte(0x80 | c&0x3f))
	case c < 1<<26:
		sb.WriteByte(byte(0xf8 | c>>24))
		sb.WriteByte(byte(0x80 | (c>>18)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>12)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>6)&0x3f))
		sb.WriteByte(byte(0x80 | c&0x3f))
	default:
		sb.WriteByte(byte(0xfc | c>>30))
		sb.WriteByte(byte(0x80 | (c>>24)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>18)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>12)&0x3f))
		sb.WriteByte(byte(0x80 | (c>>6)&0x3f))
		sb.WriteByte(byte(0x80 | c&0x3f))
	}
}

// Hash returns the issuer hash of a DN string: 40 uppercase hex digits of
// its SHA-1.
func Hash(dn string) string {
	return fmt.Sprintf("%X", sha1.Sum([]byte(dn)))
}

// SerialHex returns the hex of the DER INTEGER content octets of the
// certificate's serial number (leading 00 kept), uppercase.
func SerialHex(cert *x509.Certificate) (string, error) {
	raw, err := RawSerial(cert)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(raw)), nil
}

// RawSerial returns the DER content octets of the certificate's serial.
func RawSerial(cert *x509.Certificate) ([]byte, error) {
	tbs := cryptobyte.String(cert.RawTBSCertificate)
	var body, serial cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, errors.New("certid: malformed TBSCertificate")
	}
	if !body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.ReadASN1(&serial, cbasn1.INTEGER) || len(serial) == 0 {
		return nil, errors.New("certid: malformed serial number")
	}
	return serial, nil
}

// IssuerHash returns the hash of the certificate's issuer DN.
func IssuerHash(cert *x509.Certificate) (string, error) {
	dn, err := DN(cert.RawIssuer)
	if err != nil {
		return "", err
	}
	return Hash(dn), nil
}

// Of returns the ISVALID cert ID of a certificate.
func Of(cert *x509.Certificate) (string, error) {
	h, err := IssuerHash(cert)
	if err != nil {
		return "", err
	}
	s, err := SerialHex(cert)
	if err != nil {
		return "", err
	}
	return h + "." + s, nil
}

// Fingerprint returns the SHA-1 fingerprint of a certificate as 40
// uppercase hex digits.
func Fingerprint(der []byte) string {
	return fmt.Sprintf("%X", sha1.Sum(der))
}
