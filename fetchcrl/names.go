package fetchcrl

import (
	"encoding/asn1"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// shortNames are OpenSSL's short names for attribute types.
var shortNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.4": "SN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L",
	"2.5.4.8": "ST", "2.5.4.9": "street", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.12": "title",
	"2.5.4.17": "postalCode", "2.5.4.41": "name", "2.5.4.42": "GN", "2.5.4.43": "initials",
	"2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym", "1.2.840.113549.1.9.1": "emailAddress",
	"0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}

// opensslOneline renders a DER Name as `openssl crl -issuer` prints it
// (OpenSSL 3's default "oneline" form: "DC = org, O = Test, CN = CA"),
// for the informational issuer key of state files.
func opensslOneline(raw []byte) string {
	in := cryptobyte.String(raw)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return ""
	}
	var rdns []string
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) {
			return ""
		}
		var parts []string
		for !set.Empty() {
			var atv, val cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				return ""
			}
			name, ok := shortNames[oid.String()]
			if !ok {
				name = oid.String()
			}
			parts = append(parts, name+" = "+onelineValue(val))
		}
		rdns = append(rdns, strings.Join(parts, " + "))
	}
	return strings.Join(rdns, ", ")
}

func onelineValue(v []byte) string {
	quote := len(v) > 0 && (v[0] == ' ' || v[0] == '#' || v[len(v)-1] == ' ')
	var b strings.Builder
	for _, c := range v {
		switch {
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case strings.IndexByte(",+<>;", c) >= 0:
			quote = true
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	if quote {
		return `"` + b.String() + `"`
	}
	return b.String()
}
