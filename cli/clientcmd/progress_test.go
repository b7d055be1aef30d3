package clientcmd

import "testing"

func TestProgressText(t *testing.T) {
	for in, want := range map[string]string{
		"tick ? 0 0":              "",
		"load_crl ? 65536 0":      "loading CRL: 65536 entries read",
		"load_crl ? 10 20":        "loading CRL: 10 of 20 entries",
		"load_crl ? 512 1024 KiB": "loading CRL: 512 of 1024 KiB",
		"garbage":                 "",
		"load_crl ? x 0":          "",
	} {
		if got := progressText(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
