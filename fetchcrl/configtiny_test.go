package fetchcrl

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/internal/golden"
)

func dump(t Tiny) string {
	var lines []string
	for s, kv := range t {
		for k, v := range kv {
			lines = append(lines, s+"."+k+"="+v)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestParseTiny covers ConfigTiny as fetch-crl reads it; the expected
// documents are in testdata/tiny.golden (one case per "== name" block).
func TestParseTiny(t *testing.T) {
	cases := []struct{ name, in string }{
		{"basic", "a = 1\nb=two words \n[sect]\nc = x=y\n"},
		{"comments", "# comment\n; also\n\n  # indented\nk = v\n"},
		{"bare-key", "nowarnings\n[TestCA]\nnoerrors\n"},
		{"continuation", "crl_url = http://a/x.crl;\\\n    http://b/y.crl\n"},
		{"inline-comment", "crl_url = http://a ; http://b\nsafe = a;b\nsafe2 = a; b\n"},
		{"repeat-and-sections", "k = 1\nk = 2\n[s]\nk = 3\n[s]\nj = 4\n[broken\n"},
	}
	var got bytes.Buffer
	for _, c := range cases {
		tiny := Tiny{}
		var warns []string
		if err := ParseTiny(strings.NewReader(c.in), "test", tiny, func(w string) { warns = append(warns, w) }); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got.WriteString("== " + c.name + "\n" + dump(tiny) + "\n")
		for _, w := range warns {
			got.WriteString("warn: " + w + "\n")
		}
	}
	if err := ParseTiny(strings.NewReader("=foo\n"), "test", Tiny{}, nil); err == nil || !strings.Contains(err.Error(), "Syntax error at line 1") {
		t.Errorf("=foo: %v", err)
	}
	golden.Check(t, filepath.Join("testdata", "tiny.golden"), got.Bytes())
}

func TestWriteSectionRoundTrip(t *testing.T) {
	kv := map[string]string{"alias": "CA", "b64data": "AAAA==", "mtime": "17"}
	var b bytes.Buffer
	WriteSection(&b, "CA", kv)
	if b.String() != "[CA]\nalias=CA\nb64data=AAAA==\nmtime=17\n" {
		t.Fatalf("%q", b.String())
	}
	tiny := Tiny{}
	ParseTiny(&b, "state", tiny, nil)
	if dump(tiny) != "CA.alias=CA\nCA.b64data=AAAA==\nCA.mtime=17" {
		t.Fatalf("%s", dump(tiny))
	}
}

func discardLog() *Sink {
	l, _ := NewLog(io.Discard, 9, "qualified", "daemon")
	return l.Global()
}

func TestLoadAnchor(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		file, content string
		ok            bool
		urls          string
	}{
		{"A.info", "alias = A\ncrl_url = http://x/a.crl;https://y/a.crl\n", true, "[[http://x/a.crl https://y/a.crl]]"},
		{"B.info", "alias = B\ncrl_url.0 = http://x/0.crl\ncrl_url.1 = file:///tmp/1.crl\ncrl_url.3 = http://gap\n", true, "[[http://x/0.crl] [file:///tmp/1.crl]]"},
		{"C.info", "alias = C\ncrl_url = http://x\ncrl_url.0 = http://y\n", false, ""},
		{"D.info", "crl_url = http://x\n", false, ""},
		{"E.info", "alias = E\n", false, ""},
		{"F.info", "alias = F\ncrl_url = not-a-url\n", false, ""},
		{"G.info", "alias = G\ncrl_url = gopher://x/y\n", true, "[[]]"},
		{"H.crl_url", "# comment\nhttp://a/h.crl  # trailing\n\nhttp://b/h.crl\n", true, "[[http://a/h.crl http://b/h.crl]]"},
		{"I.crl_url", "http://a/i.crl\nbogus line\n", false, ""},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.file)
		os.WriteFile(p, []byte(c.content), 0o644)
		a, ok := loadAnchor(p, &Settings{tiny: Tiny{"_": {}}}, discardLog())
		if ok != c.ok {
			t.Errorf("%s: ok=%v", c.file, ok)
			continue
		}
		if ok {
			if got := strings.Join(strings.Fields(strings.ReplaceAll(strings.ReplaceAll(sprint(a.URLs), "[", " [ "), "]", " ] ")), ""); got != strings.ReplaceAll(c.urls, " ", "") {
				t.Errorf("%s: urls %v, want %s", c.file, a.URLs, c.urls)
			}
		}
	}
}

func sprint(v [][]string) string {
	var b strings.Builder
	b.WriteString("[")
	for _, l := range v {
		b.WriteString("[" + strings.Join(l, " ") + "]")
	}
	b.WriteString("]")
	return b.String()
}

func FuzzParseTiny(f *testing.F) {
	for _, s := range []string{"a=1\n[s]\nb\n", "x = 1 ; c\n", "k = v\\\n  w\n", "=bad\n", "[sect\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		tiny := Tiny{}
		if err := ParseTiny(bytes.NewReader(in), "fuzz", tiny, nil); err != nil {
			return
		}
		for sect, kv := range tiny {
			for k := range kv {
				if strings.ContainsAny(k, "\n") || strings.ContainsAny(sect, "\n") {
					t.Fatalf("newline in key %q / section %q", k, sect)
				}
			}
		}
	})
}

func FuzzLoadAnchor(f *testing.F) {
	f.Add([]byte("alias = A\ncrl_url = http://x/a.crl;https://y/a.crl\n"), true)
	f.Add([]byte("http://a/h.crl\n# c\nftp://b\n"), false)
	f.Add([]byte("alias = B\ncrl_url.0 = http://x\ncrl_url.1 = http://y\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, info bool) {
		name := "X.crl_url"
		if info {
			name = "X.info"
		}
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, in, 0o644)
		a, ok := loadAnchor(p, &Settings{tiny: Tiny{"_": {}}}, discardLog())
		if ok {
			for _, urls := range a.URLs {
				for _, u := range urls {
					if !urlRE.MatchString(u) {
						t.Fatalf("non-URL accepted: %q", u)
					}
				}
			}
		}
	})
}
