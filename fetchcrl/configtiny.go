// Package fetchcrl is the engine of the fetch-crl program: a drop-in for
// fetch-crl 3 (IGTF/EUGridPMA). It reads the same configuration (ConfigTiny
// syntax), .info and .crl_url trust-anchor metadata and state files,
// downloads CRLs with the project's bounded HTTP fetcher, verifies them
// with the project's CRL engine (package crl) and writes the same output
// files (OpenSSL hash names, PEM, DER, NSS).
//
// The configuration is parsed once into Settings (settings.go, config.go);
// one run (run.go) reads each anchor's state (state.go), downloads
// (download.go), parses and verifies each CRL once against crl.Policy, the
// time and rollback policy it shares with dirmngr (verify.go), writes the
// outputs (write.go) and optionally feeds a running dirmngr (dirmngr.go).
package fetchcrl

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Tiny is a ConfigTiny document: section → key → value. Keys before the
// first section are in section "_".
type Tiny map[string]map[string]string

// Set stores key=value in section sect.
func (t Tiny) Set(sect, key, value string) {
	if t[sect] == nil {
		t[sect] = map[string]string{}
	}
	t[sect][key] = value
}

// Get returns the value of key in sect and whether it is set.
func (t Tiny) Get(sect, key string) (string, bool) {
	v, ok := t[sect][key]
	return v, ok
}

var inlineComment = regexp.MustCompile(`\s;\s.+$`)

// ParseTiny reads ConfigTiny text into t (merging; a repeated key
// overwrites). It follows Config::Tiny as fetch-crl uses it: backslash-
// newline continues a line (leading blanks of the continuation removed),
// '#' and ';' start comment lines, " ; " starts an inline comment, a bare
// key means 1. warn receives the line numbers of inline comments, which
// silently cut values in fetch-crl 3 (we keep the behaviour and say so).
func ParseTiny(r io.Reader, name string, t Tiny, warn func(string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	sect := "_"
	lineNo := 0
	var pending string
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if pending != "" {
			line = pending + strings.TrimLeft(line, " \t")
			pending = ""
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSuffix(line, "\\")
			continue
		}
		if err := parseTinyLine(line, name, lineNo, &sect, t, warn); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if pending != "" {
		return parseTinyLine(pending, name, lineNo, &sect, t, warn)
	}
	return nil
}

func parseTinyLine(line, name string, lineNo int, sect *string, t Tiny, warn func(string)) error {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' {
		return nil
	}
	if strings.IndexByte(line, ';') < 0 {
		// fast path: no inline comment possible (state files carry long
		// base64 lines)
	} else if loc := inlineComment.FindStringIndex(line); loc != nil {
		if warn != nil {
			warn(fmt.Sprintf("%s line %d: text after \" ; \" is a comment and was ignored: %q", name, lineNo, strings.TrimSpace(line[loc[0]:])))
		}
		line = line[:loc[0]]
		trimmed = strings.TrimSpace(line)
	}
	if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
		*sect = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
		if t[*sect] == nil {
			t[*sect] = map[string]string{}
		}
		return nil
	}
	if k, v, ok := strings.Cut(trimmed, "="); ok {
		k = strings.TrimSpace(k)
		if k == "" {
			return fmt.Errorf("Syntax error at line %d: '%s'", lineNo, line)
		}
		t.Set(*sect, k, strings.TrimSpace(v))
		return nil
	}
	t.Set(*sect, trimmed, "1")
	return nil
}

// ReadTinyFile parses a file into t.
func ReadTinyFile(path string, t Tiny, warn func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return ParseTiny(f, path, t, warn)
}

// WriteSection writes one section with sorted keys as fetch-crl writes its
// state files ("[name]" then "key=value" lines).
func WriteSection(w io.Writer, name string, kv map[string]string) error {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "[%s]\n", name)
	for _, k := range keys {
		fmt.Fprintf(bw, "%s=%s\n", k, kv[k])
	}
	return bw.Flush()
}
