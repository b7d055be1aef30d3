package fetchcrl

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// loadTest loads conf (and defines) with an existing infodir and statedir
// and an empty cfgdir, so that nothing of the machine leaks in.
func loadTest(t *testing.T, conf string, defines ...string) (*Settings, error) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"info", "state", "conf.d"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "fetch-crl.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	info, state := filepath.Join(dir, "info"), filepath.Join(dir, "state")
	return LoadConfig(&Flags{Config: file, Cfgdir: filepath.Join(dir, "conf.d"), Infodir: &info, Statedir: &state, Defines: defines}, nil)
}

// TestSettingsErrors: every bad value is reported once, at load time, with
// fetch-crl's words where fetch-crl has them and its exit status.
func TestSettingsErrors(t *testing.T) {
	cases := []struct {
		name    string
		conf    string
		defines []string
		msg     string
		status  int
	}{
		{"httptimeout", "httptimeout = abc\n", nil, "Invalid httptimeout value 'abc' (not a number)", 2},
		{"aging-hours-suffix", "agingtolerance = 24h\n", nil, "Invalid agingtolerance value '24h' (not a number)", 2},
		{"per-anchor", "[TestCA]\nhttptimeout = 1.5\n", nil, "Invalid httptimeout value '1.5' in [TestCA] (not a number)", 2},
		{"negative-parallelism", "parallelism = -2\n", nil, "Invalid parallelism value '-2' (not a number)", 2},
		{"randomwait", "randomwait = soon\n", nil, "Invalid randomwait value 'soon' (not a number)", 2},
		{"maxcachetime", "maxcachetime = 4d\n", nil, "Invalid maxcachetime value '4d' (not a number)", 2},
		{"expirestolerance", "expirestolerance = 7h\n", nil, "Invalid expirestolerance value '7h' (not a number)", 2},
		{"verbosity", "verbosity = loud\n", nil, "Invalid verbosity value 'loud' (not a number)", 2},
		{"overflow", "maxcachetime = 99999999999999999999\n", nil, "Invalid maxcachetime value '99999999999999999999' (too large)", 2},
		{"define", "", []string{"httptimeout=x"}, "Invalid httptimeout value 'x' (not a number)", 2},
		{"define-section", "", []string{"TestCA:agingtolerance=-1"}, "Invalid agingtolerance value '-1' in [TestCA] (not a number)", 2},
		{"cache-control", "cache_control_request = 10m\n", nil, "Request cache control is invalid (not a number)", 2},
		{"cache-control-empty", "cache_control_request =\n", nil, "Request cache control is invalid (not a number)", 2},
		{"format", "formats = pem,pme\n", nil, "Invalid output format pme (use openssl, pem, der or nss)", 2},
		{"rcmode", "rcmode = strict\n", nil, "ERROR Attempt to set rcmode to invalid value of strict", 1},
		{"statedir", "", []string{"statedir=/nonexistent-fetch-crl-state"}, "", 0}, // the flag wins over --define
		{"bad-define", "", []string{"novalue"}, `Invalid --define argument "novalue" (want key=value or section:key=value)`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadTest(t, c.conf, c.defines...)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var fe *FatalError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want fatal %q", err, c.msg)
			}
			if fe.Msg != c.msg || fe.Status != c.status {
				t.Errorf("got %q (status %d), want %q (status %d)", fe.Msg, fe.Status, c.msg, c.status)
			}
		})
	}
}

// TestSettingsValues: good values arrive typed, with fetch-crl's
// precedence ([alias], then [anchorname], then global) and its toggles.
func TestSettingsValues(t *testing.T) {
	conf := "httptimeout = 30\nagingtolerance = 12\nformats = pem;der openssl\nverbosity = -1\n" +
		"cache_control_request = 0600\nhttp_proxy = http://proxy/\nnowarnings\nmaxcachetime = 60\n" +
		"[1a2b3c4d]\nhttptimeout = 5\nagingtolerance = 0\nprepend_url = http://mirror/@ALIAS@.r@R@\n" +
		"[TestCA]\nhttptimeout = 7\nnohttp_proxy\nwarnings\ncatemplate = @ALIAS@.pem;@HASH@.0\n"
	s, err := loadTest(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	if s.Verbosity != -1 || s.CacheControl != "0600" || s.MaxCacheTime != 60 || s.ExpiresTolerance != 25200 {
		t.Errorf("globals: %+v", s)
	}
	if want := (Formats{PEM: true, DER: true, OpenSSL: true}); s.Formats != want || !s.OpenSSLDual {
		t.Errorf("formats %+v dual %v", s.Formats, s.OpenSSLDual)
	}
	got := s.Anchor("TestCA", "1a2b3c4d", "local")
	want := AnchorSettings{
		PrependURL: "http://mirror/TestCA.r@R@", AgingTolerance: 0, HTTPTimeout: 7,
		NameTemplateDER: "1a2b3c4d.@R@.crl", NameTemplatePEM: "1a2b3c4d.@R@.crl.pem",
		Cadir: s.Cadir, CATemplates: []string{"TestCA.pem", "@HASH@.0"}, Statedir: s.Statedir,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("anchor settings\n got %+v\nwant %+v", got, want)
	}
	other := s.Anchor("Other", "Other", "local")
	if other.HTTPTimeout != 30 || other.AgingTolerance != 12 || other.HTTPProxy != "http://proxy/" || !other.NoWarnings {
		t.Errorf("inherited settings %+v", other)
	}
}

// FuzzSettings: any configuration text either fails to load with a
// FatalError or yields settings whose numbers are what the text says.
func FuzzSettings(f *testing.F) {
	for _, s := range []string{"httptimeout = 30\n[A]\nagingtolerance = 0\n", "[A]\nagingtolerance = 99999999999999999999\n", "formats = pem der\nverbosity = -1\n",
		"[A]\nhttptimeout = x\n", "cache_control_request = 1\nnocache\n[B]\ncache\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cfg := Tiny{"_": {}}
		if err := ParseTiny(strings.NewReader(text), "fuzz", cfg, nil); err != nil {
			return
		}
		g := cfg["_"]
		g["infodir"], g["statedir"] = "", ""
		applyDefaults(g)
		s, err := parseSettings(cfg)
		if err != nil {
			var fe *FatalError
			if !errors.As(err, &fe) || fe.Msg == "" {
				t.Fatalf("not a fatal error: %v", err)
			}
			return
		}
		a := s.Anchor("A", "A", "local")
		if v, ok := cfg["A"]["agingtolerance"]; ok && strconv.Itoa(a.AgingTolerance) != strings.TrimLeft(v, "0") && !(a.AgingTolerance == 0 && strings.Trim(v, "0") == "") {
			t.Fatalf("agingtolerance %q became %d", v, a.AgingTolerance)
		}
	})
}
