package certid

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SubjectHash returns OpenSSL's X509_NAME_hash of a DER-encoded Name (what
// `openssl x509 -subject_hash` prints for the subject): the first four
// bytes, little endian, of the SHA-1 of the name's canonical encoding.
func SubjectHash(rawName []byte) (string, error) {
	canon, err := canonicalName(rawName)
	if err != nil {
		return "", err
	}
	sum := sha1.Sum(canon)
	return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sum[:4])), nil
}

// SubjectHashOld returns OpenSSL's X509_NAME_hash_old (`-subject_hash_old`):
// the first four bytes, little endian, of the MD5 of the DER Name.
func SubjectHashOld(rawName []byte) string {
	sum := md5.Sum(rawName)
	return fmt.Sprintf("%08x", binary.LittleEndian.Uint32(sum[:4]))
}

// canonicalName builds OpenSSL's canonical name encoding (x509_name_canon):
// the DER of every RDN SET concatenated (no outer SEQUENCE), where string
// values of the text types are converted to UTF-8, trimmed, internal
// white space collapsed to one blank, ASCII upper case folded to lower
// case (other bytes are kept), and re-encoded as UTF8String.
func canonicalName(raw []byte) ([]byte, error) {
	in := cryptobyte.String(raw)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, ErrBadName
	}
	var out cryptobyte.Builder
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) {
			return nil, ErrBadName
		}
		// Each canonical ATV is encoded on its own; DER orders the
		// members of a SET OF by their encodings.
		var atvs [][]byte
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) ||
				!atv.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) {
				return nil, ErrBadName
			}
			var b cryptobyte.Builder
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(oid)
				if s, ok := toUTF8(tag, val); ok {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes(canonText(s)) })
				} else {
					b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(val) })
				}
			})
			enc, err := b.Bytes()
			if err != nil {
				return nil, ErrBadName
			}
			atvs = append(atvs, enc)
		}
		slices.SortFunc(atvs, bytes.Compare)
		out.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, a := range atvs {
				b.AddBytes(a)
			}
		})
	}
	return out.Bytes()
}

// toUTF8 converts the value of a canonicalised string type to UTF-8.
func toUTF8(tag cbasn1.Tag, v []byte) ([]byte, bool) {
	switch tag {
	case cbasn1.UTF8String, cbasn1.PrintableString, cbasn1.IA5String, cbasn1.Tag(26): // VisibleString
		return v, true
	case cbasn1.T61String: // treated as Latin-1, as OpenSSL does
		out := make([]byte, 0, len(v))
		for _, c := range v {
			out = utf8.AppendRune(out, rune(c))
		}
		return out, true
	case cbasn1.Tag(30): // BMPString
		if len(v)%2 != 0 {
			return nil, false
		}
		u := make([]uint16, len(v)/2)
		for i := range u {
			u[i] = uint16(v[2*i])<<8 | uint16(v[2*i+1])
		}
		return []byte(string(utf16.Decode(u))), true
	case cbasn1.Tag(28): // UniversalString
		if len(v)%4 != 0 {
			return nil, false
		}
		var out []byte
		for i := 0; i < len(v); i += 4 {
			out = utf8.AppendRune(out, rune(binary.BigEndian.Uint32(v[i:])))
		}
		return out, true
	}
	return nil, false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// canonText trims, collapses white space and lower-cases ASCII letters.
func canonText(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isSpace(c) {
			for i+1 < len(s) && isSpace(s[i+1]) {
				i++
			}
			out = append(out, ' ')
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return out
}
