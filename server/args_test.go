package server

import (
	"bytes"
	"testing"
)

func TestSkipAndHasOption(t *testing.T) {
	tests := []struct {
		line, rest string
		opt        string
		has        bool
	}{
		{"--clear foo", "foo", "--clear", true},
		{"  --only-ocsp --force-default-responder ID FPR", "ID FPR", "--force-default-responder", true},
		{"ID --only-ocsp", "ID --only-ocsp", "--only-ocsp", false},
		{"-- --clear", "--clear", "--clear", false},
		{"--url", "", "--url", true},
		{"", "", "--x", false},
	}
	for _, tc := range tests {
		if got := skipOptions(tc.line); got != tc.rest {
			t.Errorf("skipOptions(%q) = %q, want %q", tc.line, got, tc.rest)
		}
		if got := hasOption(tc.line, tc.opt); got != tc.has {
			t.Errorf("hasOption(%q, %q) = %v", tc.line, tc.opt, got)
		}
	}
}

func TestFingerprintFromLine(t *testing.T) {
	const fpr = "56D0180A0422C6906506E4C6A1F2D40807C58882"
	tests := []struct {
		line string
		want string
		ok   bool
	}{
		{fpr, fpr, true},
		{"56d0180a0422c6906506e4c6a1f2d40807c58882 trailing", fpr, true},
		{"56:D0:18:0A:04:22:C6:90:65:06:E4:C6:A1:F2:D4:08:07:C5:88:82", fpr, true},
		{fpr[:38], "", false},
		{fpr + "00", "", false},
		{"", "", false},
		{"zz" + fpr[2:], "", false},
	}
	for _, tc := range tests {
		got, ok := fingerprintFromLine(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("fingerprintFromLine(%q) = %q, %v", tc.line, got, ok)
		}
	}
}

// The error details are GnuPG 2.2.40's (transcript 10-gca-session1.out).
func TestParseISValid(t *testing.T) {
	const h = "FFFB5A4A55F394FCB58CA797FF066E8F892C3917"
	tests := []struct {
		line   string
		hash   string
		serial []byte
		fpr    string
		detail string
	}{
		{h + ".1000", h, []byte{0x10, 0x00}, "", ""},
		{h + ".001001", h, []byte{0x00, 0x10, 0x01}, "", ""},
		{h + ".1000 02E229D3C6B16ABC91D278FF09E9FFA5E8233261", h, []byte{0x10, 0x00}, "02E229D3C6B16ABC91D278FF09E9FFA5E8233261", ""},
		{"", "", nil, "", errTextNoSerial},
		{h, "", nil, "", errTextNoSerial},
		{h[:39] + ".1000", "", nil, "", errTextIDTooShort},
		{h + ".1000 1234", "", nil, "", errTextFprTooShort},
	}
	for _, tc := range tests {
		hash, serial, fpr, detail := parseISValid(tc.line)
		if hash != tc.hash || !bytes.Equal(serial, tc.serial) || fpr != tc.fpr || detail != tc.detail {
			t.Errorf("parseISValid(%q) = %q %x %q %q", tc.line, hash, serial, fpr, detail)
		}
	}
}
