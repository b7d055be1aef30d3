// Command genman writes the man pages the Debian package installs, under
// the installed program names (dirmngr-go, dirmngr-client-go,
// fetch-crl-go), gzipped, into the directory given by -out. `make man`
// runs it.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dirmngr/dirmngr/cli/mandoc"
)

func main() {
	out := flag.String("out", "build/man", "output directory")
	fetchcrl := flag.String("fetch-crl-page", "docs/fetch-crl.8", "the hand-written fetch-crl(8)")
	flag.Parse()
	if err := run(*out, *fetchcrl); err != nil {
		fmt.Fprintln(os.Stderr, "genman:", err)
		os.Exit(1)
	}
}

func run(out, fetchcrlPage string) error {
	n := mandoc.InstalledNames
	src, err := os.ReadFile(fetchcrlPage)
	if err != nil {
		return fmt.Errorf("reading fetch-crl(8): %w", err)
	}
	pages := map[string][]byte{
		n.Dirmngr + ".8":  mandoc.DirmngrManPageFor(mandoc.PageDate, n),
		n.Client + ".1":   mandoc.ClientManPageFor(mandoc.PageDate, n),
		n.FetchCRL + ".8": mandoc.FetchCRLManPageFor(src, n),
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	for name, page := range pages {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		if _, err := zw.Write(page); err != nil {
			return fmt.Errorf("compressing %s: %w", name, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("compressing %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name+".gz"), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}
