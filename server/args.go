package server

import (
	"encoding/hex"
	"strings"
)

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
		if i+2 > len(line) {
			return "", false
		}
		if _, err := hex.DecodeString(line[i : i+2]); err != nil {
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
	if len(serialHex)%2 == 1 {
		serialHex = "0" + serialHex
	}
	serial, err := hex.DecodeString(serialHex)
	if err != nil {
		return "", nil, "", "invalid serial number in cert ID"
	}
	return issuerHash, serial, fpr, ""
}
