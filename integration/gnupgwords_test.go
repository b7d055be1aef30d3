package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/testpki"
)

// progResult is one run of a program: exit status, stdout and stderr.
type progResult struct {
	code        int
	out, errOut string
}

func runProg(t *testing.T, prog, home string, args ...string) progResult {
	t.Helper()
	return runProgIn(t, prog, home, nil, args...)
}

func runProgIn(t *testing.T, prog, home string, stdin []byte, args ...string) progResult {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C", "LANGUAGE=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", prog, err)
	}
	return progResult{code, out.String(), errOut.String()}
}

// logLine matches GnuPG's log lines ("dirmngr[123.0]: ..."), which GnuPG's
// one-shot commands print about its own cache and are not compared.
var logLine = regexp.MustCompile(`(?m)^dirmngr\[[0-9.]+\]: .*\n`)

// TestOptionsAsGnuPG: option abbreviations, the words for bad options,
// --gpgconf-test's report of bad dirmngr.conf lines and the exit status of
// a failed --load-crl, each against GnuPG 2.2.40's dirmngr.
func TestOptionsAsGnuPG(t *testing.T) {
	ours := bin(t, "dirmngr")
	gnupgs := requireTool(t, "dirmngr")
	badCRL := filepath.Join(t.TempDir(), "bad.crl")
	os.WriteFile(badCRL, []byte("not a CRL"), 0o644)
	tests := []struct {
		name     string
		args     []string
		conf     string
		sameErr  bool   // stderr identical (log lines aside)
		code     int    // the exit status both must have
		outStart string // our stdout starts with
	}{
		{"vers", []string{"--vers"}, "", false, 0, "dirmngr 0.1.0"},
		{"ambiguous", []string{"--ver"}, "", true, 2, ""},
		{"invalid", []string{"--bogus"}, "", true, 2, ""},
		{"missing argument", []string{"--log-file"}, "", true, 2, ""},
		{"list-crl abbreviated", []string{"--list-crl"}, "", false, 0, ""},
		{"verb abbreviated", []string{"--verb", "--list-crls"}, "", false, 0, ""},
		{"gpgconf-test clean", []string{"--gpgconf-test"}, "verbose\nldaptimeout 20\n", true, 0, ""},
		{"gpgconf-test bad lines", []string{"--gpgconf-test"}, "verbose\nno-such-option 1\nldaptimeout\nallow-ocsp\n", true, 0, ""},
		{"load-crl failure", []string{"--load-crl", badCRL}, "", false, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]progResult
			for i, prog := range []string{ours, gnupgs} {
				home := newHome(t)
				if tc.conf != "" {
					os.WriteFile(filepath.Join(home, "dirmngr.conf"), []byte(tc.conf), 0o600)
				}
				args := append([]string{"--homedir", home}, tc.args...)
				res[i] = runProg(t, prog, home, args...)
				res[i].errOut = strings.ReplaceAll(logLine.ReplaceAllString(res[i].errOut, ""), home, "HOME")
			}
			o, g := res[0], res[1]
			if o.code != tc.code || g.code != tc.code {
				t.Errorf("exit: ours %d, GnuPG %d, want %d\nours: %s\nGnuPG: %s", o.code, g.code, tc.code, o.errOut, g.errOut)
			}
			if tc.sameErr && o.errOut != g.errOut {
				t.Errorf("stderr differs:\nours:  %q\nGnuPG: %q", o.errOut, g.errOut)
			}
			if !strings.HasPrefix(o.out, tc.outStart) {
				t.Errorf("stdout %q, want it to start with %q", o.out, tc.outStart)
			}
		})
	}
}

// TestClientAsGnuPG: dirmngr-client's words and exit status, ours against
// GnuPG 2.2.40's client, both talking to our daemon: --ping, a valid and a
// revoked check, a lookup that finds nothing, a failed --load-crl,
// --version abbreviated, and no daemon at all.
func TestClientAsGnuPG(t *testing.T) {
	daemon := bin(t, "dirmngr")
	ourClient := bin(t, "dirmngr-client")
	gnupgClient := requireTool(t, "dirmngr-client")
	l := newLab(t)
	home := newHome(t)
	os.MkdirAll(filepath.Join(home, "trusted-certs"), 0o700)
	testpki.WriteFile(filepath.Join(home, "trusted-certs"), "root.crt", l.root.DER())
	badCRL := filepath.Join(home, "bad.crl")
	os.WriteFile(badCRL, []byte("not a CRL"), 0o644)
	startDaemon(t, daemon, home)
	tests := []struct {
		name    string
		home    string
		stdin   []byte
		args    []string
		code    int
		sameOut bool
	}{
		{"ping", home, nil, []string{"--ping"}, 0, true},
		{"ping quiet", home, nil, []string{"-q", "--ping"}, 0, true},
		{"valid", home, l.alice.DER(), nil, 0, true},
		{"revoked", home, l.bob.DER(), nil, 1, true},
		{"validate", home, l.alice.DER(), []string{"--validate"}, 0, true},
		{"cache-cert", home, l.inter.DER(), []string{"--cache-cert"}, 0, false},
		{"cache-cert again", home, l.inter.DER(), []string{"--cache-cert"}, 0, true},
		{"lookup not found", home, nil, []string{"--lookup", "--local", "0x" + strings.Repeat("AB", 20)}, 0, true},
		{"load-crl failure", home, nil, []string{"--load-crl", badCRL}, 1, true},
		{"vers", home, nil, []string{"--vers"}, 0, false},
		{"no daemon", newHome(t), nil, []string{"--ping"}, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := runProgIn(t, ourClient, tc.home, tc.stdin, tc.args...)
			g := runProgIn(t, gnupgClient, tc.home, tc.stdin, tc.args...)
			if o.code != tc.code || g.code != tc.code {
				t.Errorf("exit: ours %d, GnuPG %d, want %d\nours: %s\nGnuPG: %s", o.code, g.code, tc.code, o.errOut, g.errOut)
			}
			if tc.sameOut && (o.out != g.out || o.errOut != g.errOut) {
				t.Errorf("output differs:\nours:  %q %q\nGnuPG: %q %q", o.out, o.errOut, g.out, g.errOut)
			}
			if tc.name == "vers" && (!strings.HasPrefix(o.out, "dirmngr-client ") || !strings.HasPrefix(g.out, "dirmngr-client ")) {
				t.Errorf("--vers: ours %q, GnuPG %q", o.out, g.out)
			}
		})
	}
	// A certificate new to the cache: each client caches its own.
	o := runProgIn(t, ourClient, home, l.erin.DER(), "--cache-cert")
	g := runProgIn(t, gnupgClient, home, l.frank.DER(), "--cache-cert")
	if o.code != 0 || g.code != 0 || o.errOut != g.errOut {
		t.Errorf("--cache-cert of a new certificate: ours %d %q, GnuPG %d %q", o.code, o.errOut, g.code, g.errOut)
	}
}
