package ocsp

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ParseSigners interprets --ocsp-signer: a fingerprint (40 hex digits,
// colons allowed), or, when the argument contains a slash, dot or tilde, a
// file of fingerprints (one per line, '#' comments). "~/" expands to
// $HOME; a name without a leading slash is relative to homedir.
func ParseSigners(arg, homedir string) ([]string, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return nil, nil
	}
	if !strings.ContainsAny(arg, "/.~") {
		f, ok := normFpr(arg)
		if !ok {
			return nil, fmt.Errorf("ocsp-signer: %q is not a SHA-1 fingerprint", arg)
		}
		return []string{f}, nil
	}
	name := arg
	switch {
	case strings.HasPrefix(name, "~/"):
		name = filepath.Join(os.Getenv("HOME"), name[2:])
	case !strings.HasPrefix(name, "/"):
		name = filepath.Join(homedir, name)
	}
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("ocsp-signer: %w", err)
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f, ok := normFpr(line)
		if !ok {
			return nil, fmt.Errorf("ocsp-signer: %s:%d: not a SHA-1 fingerprint", name, n)
		}
		out = append(out, f)
	}
	return out, sc.Err()
}

func normFpr(s string) (string, bool) {
	s = strings.ToUpper(strings.ReplaceAll(s, ":", ""))
	if len(s) != 40 {
		return "", false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return s, true
}
