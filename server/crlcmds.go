package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/gpgerr"
)

func (s *Server) cmdLoadCRL(c *cmd, line string) error {
	useURL := hasOption(line, "--url")
	arg := assuan.UnescapePlus(skipOptions(line))
	if arg == "" {
		return gpgerr.NewError(gpgerr.ErrAssParameter, "filename or URL expected")
	}
	progress(c.as)
	if useURL {
		return c.set.CRL.Fetch(c.as.Context(), c.request(), arg)
	}
	_, err := c.set.CRL.LoadFile(c.as.Context(), c.request(), arg)
	return err
}

func (s *Server) cmdListCRLs(c *cmd, _ string) error {
	w := &dataWriter{as: c.as}
	if err := WriteCRLList(w, c.set.Cache); err != nil {
		return err
	}
	return w.err
}

type dataWriter struct {
	as  *assuan.Session
	err error
}

// Write sends p as D lines; the first error sticks.
func (w *dataWriter) Write(p []byte) (int, error) {
	if w.err == nil {
		w.err = w.as.Data(p)
	}
	return len(p), w.err
}

func (s *Server) cmdFlushCRLs(c *cmd, _ string) error {
	if !allowedControl(c.as) {
		return gpgerr.ErrForbidden
	}
	if err := c.set.Cache.Flush(); err != nil {
		return gpgerr.Wrap(gpgerr.ErrGeneral, err)
	}
	return nil
}

// WriteCRLList writes GnuPG's LISTCRLS text for every cached CRL. Each
// CRL's listing is first copied out of the cache into a spool (an unlinked
// temporary file, else memory) and only then written to w, so a slow
// reader never holds a cache transaction open: loads and lookups go on.
func WriteCRLList(w io.Writer, cache *crlcache.Cache) error {
	sp := newSpool()
	defer sp.close()
	for _, m := range cache.List() {
		if err := sp.reset(); err != nil {
			return err
		}
		bw := bufio.NewWriterSize(sp.w, 64<<10)
		writeCRLHeader(bw, &m)
		var line []byte
		err := cache.ForEachID(m.ID(), func(certIssuer string, serial []byte, e crlcache.Entry) error {
			var issuer string
			if certIssuer != "" && certIssuer != m.IssuerHash {
				issuer = certIssuer // an indirect CRL's entry for another issuer
			}
			line = append(line[:0], "  "...)
			line = append(line, crl.SerialHex(serial)...)
			line = append(line, ":\t reasons( "...)
			line = append(line, reasonNames(e.Reason)...)
			line = append(line, ") rdate: "...)
			line = append(line, isoTime(e.RevokedAt)...)
			if issuer != "" {
				line = append(line, " issuer-hash: "...)
				line = append(line, issuer...)
			}
			line = append(line, '\n')
			_, err := bw.Write(line)
			return err
		})
		if err != nil {
			return err
		}
		bw.WriteString("End CRL dump\n\n")
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("server: spooling the CRL list: %w", err)
		}
		if err := sp.copyTo(w); err != nil {
			return err
		}
	}
	return nil
}

// writeCRLHeader writes the part of a CRL's listing that precedes its
// entries.
func writeCRLHeader(b io.StringWriter, m *crlcache.Meta) {
	p := func(format string, args ...any) { b.WriteString(fmt.Sprintf(format, args...)) }
	p("--------------------------------------------------------\n")
	p("Begin CRL dump (retrieved via %s)\n", m.URL)
	p(" Issuer:\t%s\n", m.Issuer)
	p(" Issuer Hash:\t%s\n", m.IssuerHash)
	p(" This Update:\t%s\n", isoTime(m.ThisUpdate))
	p(" Next Update:\t%s\n", isoTime(m.NextUpdate))
	num := m.Number
	if num == "" {
		num = "none"
	}
	p(" CRL Number :\t%s\n", num)
	if len(m.AKISerial) > 0 && len(m.AKIIssuer) > 0 {
		p(" AuthKeyId  :\t%X\n", m.AKISerial)
		for _, n := range m.AKIIssuer {
			p("             \t%s\n", n)
		}
	} else {
		p(" AuthKeyId  :\tnone\n")
	}
	trust := m.TrustFpr
	if trust == "" {
		trust = "[system]"
	}
	p(" Trust Check:\t%s\n", trust)
	writeScope(b, m)
	if m.Flags&crlcache.FlagTooOld != 0 {
		p(" ERROR: The CRL will not be used because it was still too old after an update!\n")
	}
	if m.Flags&crlcache.FlagUnknownCritical != 0 {
		p(" ERROR: The CRL will not be used due to an unknown critical extension!\n")
	}
	if m.Flags&^3 != 0 {
		p(" ERROR: The CRL will not be used\n")
	}
	p("\n")
}

// spool holds one CRL's listing between the cache and a slow writer: an
// unlinked temporary file, or memory when no temporary file can be made.
type spool struct {
	f   *os.File
	buf bytes.Buffer
	w   io.Writer
}

func newSpool() *spool {
	sp := &spool{}
	if f, err := os.CreateTemp("", "dirmngr-listcrls-*"); err == nil {
		os.Remove(f.Name())
		sp.f, sp.w = f, f
	} else {
		sp.w = &sp.buf
	}
	return sp
}

func (sp *spool) reset() error {
	if sp.f == nil {
		sp.buf.Reset()
		return nil
	}
	if err := sp.f.Truncate(0); err != nil {
		return fmt.Errorf("server: spooling the CRL list: %w", err)
	}
	_, err := sp.f.Seek(0, io.SeekStart)
	return err
}

func (sp *spool) copyTo(w io.Writer) error {
	if sp.f == nil {
		_, err := w.Write(sp.buf.Bytes())
		return err
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err := io.CopyBuffer(w, sp.f, make([]byte, 32<<10))
	return err
}

func (sp *spool) close() {
	if sp.f != nil {
		sp.f.Close()
	}
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format("20060102T150405")
}

// reasonNames renders reason bits with GnuPG's names, including its
// inconsistent trailing blanks.
func reasonNames(r uint16) string {
	var b strings.Builder
	for _, n := range []struct {
		bit  uint16
		name string
	}{
		{0x01, "unspecified "}, {0x02, "key_compromise "}, {0x04, "ca_compromise "},
		{0x08, "affiliation_changed "}, {0x10, "superseded"}, {0x20, "cessation_of_operation"},
		{0x40, "certificate_hold"}, {0x8000, "other"},
	} {
		if r&n.bit != 0 {
			b.WriteString(n.name)
		}
	}
	return b.String()
}
