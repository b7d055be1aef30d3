package integration

import "testing"

// TestFetchCRLBadNumbersMatchPerl: a flag value that is not a number gets
// Getopt::Long's message, naming the option as it was typed, and exit 1.
func TestFetchCRLBadNumbersMatchPerl(t *testing.T) {
	ours := bin(t, "fetch-crl")
	perl := perlFetchCRL(t)
	l := newFCLab(t)
	cases := [][]string{
		{"-T", "abc"},
		{"--httptimeout=abc"},
		{"--httpt", "abc"},
		{"-vp", "x"},
		{"-a", "24h"},
		{"--randomwait", "-"},
	}
	for _, args := range cases {
		o := l.runFC(t, ours, "ours", args...)
		p := l.runFC(t, perl, "perl", args...)
		if o.code != p.code || first1(o.lines) != first1(p.lines) {
			t.Errorf("%q: ours %d %q, Perl %d %q", args, o.code, first1(o.lines), p.code, first1(p.lines))
		}
	}
}
