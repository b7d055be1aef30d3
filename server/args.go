package server

import "strings"

// skipOptions skips leading blanks and every leading word starting with
// "--" (a bare "--" ends the options), then blanks, as GnuPG's
// skip_options does.
func skipOptions(line string) string {
	line = strings.TrimLeft(line, " \t")
	for strings.HasPrefix(line, "--") {
		word := line
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			word = line[:i]
		}
		line = strings.TrimLeft(line[len(word):], " \t")
		if word == "--" {
			break
		}
	}
	return line
}

// hasOption reports whether the blank-delimited word opt occurs among the
// leading options of line (GnuPG's has_option).
func hasOption(line, opt string) bool {
	opts := line[:len(line)-len(skipOptions(line))]
	for _, w := range strings.Fields(opts) {
		if w == opt {
			return true
		}
	}
	return false
}

// isHex reports whether s consists of hex digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// fingerprintFromLine extracts a 20-byte SHA-1 fingerprint given as 40 hex
// digits, optionally with ':' between the bytes, terminated by a blank or
// the end of the line (GnuPG's get_fingerprint_from_line). Anything else
// means "no fingerprint given"; the result is 40 uppercase hex digits.
func fingerprintFromLine(line string) (string, bool) {
	line = strings.TrimLeft(line, " \t")
	var b strings.Builder
	i := 0
	for n := 0; n < 20; n++ {
		if n > 0 && i < len(line) && line[i] == ':' {
			i++
		}
		if i+2 > len(line) || !isHex(line[i:i+2]) {
			return "", false
		}
		b.WriteString(strings.ToUpper(line[i : i+2]))
		i += 2
	}
	if i < len(line) && line[i] != ' ' && line[i] != '\t' {
		return "", false
	}
	return b.String(), true
}

func hexByte(a, b byte) (byte, bool) {
	h := func(c byte) byte {
		switch {
		case c >= '0' && c <= '9':
			return c - '0'
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10
		default:
			return c - 'A' + 10
		}
	}
	return h(a)<<4 | h(b), true
}

// certIDError texts are GnuPG's exact details for ISVALID parse errors.
const (
	errTextNoSerial    = "serialno missing in cert ID"
	errTextIDTooShort  = "cert ID is too short"
	errTextFprTooShort = "fingerprint too short"
)

// parseISValid splits ISVALID's arguments (after the options) into the
// issuer hash, the serial (raw bytes) and the optional fingerprint, with
// GnuPG's checks and error texts. ok=false returns the detail text.
func parseISValid(line string) (issuerHash string, serial []byte, fpr string, detail string) {
	line = strings.TrimLeft(line, " \t")
	word := line
	rest := ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		word, rest = line[:i], strings.TrimLeft(line[i:], " \t")
	}
	dot := strings.IndexByte(word, '.')
	if dot < 0 {
		return "", nil, "", errTextNoSerial
	}
	if dot != 40 {
		return "", nil, "", errTextIDTooShort
	}
	issuerHash = word[:dot]
	serialHex := word[dot+1:]
	if rest != "" {
		f := rest
		if i := strings.IndexAny(rest, " \t"); i >= 0 {
			f = rest[:i]
		}
		if len(f) != 40 {
			return "", nil, "", errTextFprTooShort
		}
		fpr = strings.ToUpper(f)
	}
	serial = make([]byte, 0, len(serialHex)/2+1)
	if len(serialHex)%2 == 1 {
		serialHex = "0" + serialHex
	}
	for i := 0; i+1 < len(serialHex); i += 2 {
		if !isHex(serialHex[i : i+2]) {
			return "", nil, "", "invalid serial number in cert ID"
		}
		v, _ := hexByte(serialHex[i], serialHex[i+1])
		serial = append(serial, v)
	}
	return issuerHash, serial, fpr, ""
}
