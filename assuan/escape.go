package assuan

import "strings"

const hexDigits = "0123456789ABCDEF"

// EscapeData escapes the bytes of a D line payload that must not appear
// raw: '%', CR and LF become %25, %0D and %0A. Every other byte is kept.
func EscapeData(p []byte) []byte {
	out := make([]byte, 0, len(p)+8)
	for _, c := range p {
		if c == '%' || c == '\r' || c == '\n' {
			out = append(out, '%', hexDigits[c>>4], hexDigits[c&15])
		} else {
			out = append(out, c)
		}
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// UnescapeData decodes every %XX sequence of a D line payload. A '%' not
// followed by two hex digits is kept as is.
func UnescapeData(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			hi, ok1 := unhex(p[i+1])
			lo, ok2 := unhex(p[i+2])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 2
				continue
			}
		}
		out = append(out, p[i])
	}
	return out
}

// maxStatusText bounds the text of a status line so that the whole line
// stays within the protocol's line length.
const maxStatusText = 940

// EscapeStatus makes text safe for a status ("S") or comment line: CR and
// LF become the two characters \r and \n, other control characters are
// dropped to a '?', and the result is cut to a length that keeps the line
// within the protocol limit. A status line can therefore never carry a raw
// line break (the lesson of CVE-2022-34903).
func EscapeStatus(text string) string {
	if !strings.ContainsFunc(text, func(r rune) bool { return r < 0x20 || r == 0x7f }) && len(text) <= maxStatusText {
		return text
	}
	var b strings.Builder
	for i := 0; i < len(text) && b.Len() < maxStatusText; i++ {
		switch c := text[i]; {
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 && c != '\t' || c == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if len(s) > maxStatusText {
		s = s[:maxStatusText]
	}
	return s
}

// UnescapePlus decodes dirmngr's argument convention for file names and
// search patterns: %XX is a byte, '+' is a blank.
func UnescapePlus(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '+':
			b = append(b, ' ')
		case s[i] == '%' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
			} else {
				b = append(b, s[i])
			}
		default:
			b = append(b, s[i])
		}
	}
	return string(b)
}

// EscapePlus encodes an argument for dirmngr's plus convention (the inverse
// of UnescapePlus): '%', '+', blanks, control characters and DEL as %XX.
func EscapePlus(s string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '+' || c <= ' ' || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte(hexdigits[c>>4])
			b.WriteByte(hexdigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
