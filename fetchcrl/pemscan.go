package fetchcrl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// fetch-crl 3 takes the first match of
//
//	(?sm)^-----BEGIN X509 CRL-----\n[^-]+\n-----END X509 CRL-----$
//
// in the download with CRLF turned into LF; the text matched is the
// content of the OpenSSL-format file. findPEM finds the same match in a
// spooled body as a stream, and crlfReader reproduces its text.

const (
	pemBegin = "-----BEGIN X509 CRL-----\n"
	pemEnd   = "-----END X509 CRL-----"
)

// pemSpan is where the match lies in the raw (not normalised) body.
type pemSpan struct{ off, n int64 }

// normReader reads a body with CRLF as LF, keeping the raw offset of each
// character.
type normReader struct {
	r   *bufio.Reader
	pos int64 // raw offset of the next character
}

// next returns the next character and its raw offset.
func (n *normReader) next() (byte, int64, error) {
	c, err := n.r.ReadByte()
	if err != nil {
		return 0, 0, err
	}
	at := n.pos
	n.pos++
	if c == '\r' {
		if nx, err := n.r.Peek(1); err == nil && nx[0] == '\n' {
			n.r.ReadByte()
			n.pos++
			c = '\n'
		}
	}
	return c, at, nil
}

// plain skips the characters other than '-', CR and LF buffered at the
// reader's position; it returns how many and the last one.
func (n *normReader) plain() (int, byte) {
	buf, _ := n.r.Peek(n.r.Buffered())
	i := bytes.IndexAny(buf, "-\r\n")
	if i < 0 {
		i = len(buf)
	}
	if i == 0 {
		return 0, 0
	}
	last := buf[i-1]
	n.r.Discard(i)
	n.pos += int64(i)
	return i, last
}

// pemMatcher is the state of the search for fetch-crl's match.
type pemMatcher struct {
	phase     int   // 0 BEGIN line, 1 body, 2 END line
	k         int   // characters of pemBegin matched on this line; -1: not a BEGIN line
	lineStart int64 // raw offset of the current line
	start     int64 // raw offset of the BEGIN line being followed
	run       int   // body: characters other than '-'
	last      byte  // body: last of them
	j         int   // END line: characters of pemEnd matched
}

// findPEM returns the span of fetch-crl's match in r, ok false when there
// is none.
func findPEM(r io.Reader) (pemSpan, bool, error) {
	nr := &normReader{r: bufio.NewReaderSize(r, 64<<10)}
	m := &pemMatcher{}
	for {
		if m.phase == 1 {
			if k, last := nr.plain(); k > 0 {
				m.run, m.last = m.run+k, last // the bulk of a block
				continue
			}
		}
		c, at, err := nr.next()
		if err == io.EOF {
			if m.phase == 2 && m.j == len(pemEnd) {
				return pemSpan{m.start, nr.pos - m.start}, true, nil
			}
			return pemSpan{}, false, nil
		}
		if err != nil {
			return pemSpan{}, false, fmt.Errorf("reading the download: %w", err)
		}
		if end, ok := m.feed(c, at, nr.pos); ok {
			return pemSpan{m.start, end - m.start}, true, nil
		}
	}
}

// feed advances the search by character c, at raw offsets [at, after);
// it returns the raw end of the match when c completes one.
func (m *pemMatcher) feed(c byte, at, after int64) (int64, bool) {
	switch m.phase {
	case 1:
		if c != '-' {
			m.run++
			m.last = c
			return 0, false
		}
		if m.run >= 2 && m.last == '\n' {
			m.phase, m.j, m.lineStart = 2, 1, at
			return 0, false
		}
		// No match from this BEGIN line; this '-' may start another.
		m.phase, m.k = 0, -1
		if m.last == '\n' {
			m.k, m.lineStart = 1, at
		}
		return 0, false
	case 2:
		if m.j == len(pemEnd) {
			if c == '\n' {
				return at, true
			}
			m.phase, m.k = 0, -1
			return 0, false
		}
		if c == pemEnd[m.j] {
			m.j++
			return 0, false
		}
		// Not the END line: it may still be a BEGIN line ("-----B").
		m.phase, m.k = 0, -1
		if m.j <= 5 {
			m.k = m.j
		}
	}
	m.search(c, after)
	return 0, false
}

// search is phase 0: looking for a BEGIN line (after: the raw offset
// past c).
func (m *pemMatcher) search(c byte, after int64) {
	if m.k >= 0 {
		if c == pemBegin[m.k] {
			if m.k++; m.k == len(pemBegin) {
				m.phase, m.start, m.run, m.last = 1, m.lineStart, 0, '\n'
			}
			return
		}
		m.k = -1
	}
	if c == '\n' {
		m.k, m.lineStart = 0, after
	}
}

// crlfReader reads r with every CRLF turned into LF.
type crlfReader struct{ r *bufio.Reader }

func newCRLFReader(r io.Reader) *crlfReader { return &crlfReader{r: bufio.NewReaderSize(r, 64<<10)} }

func (c *crlfReader) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		w := 0
		for i := 0; i < n; i++ {
			if p[i] == '\r' {
				if i+1 < n && p[i+1] == '\n' {
					continue
				}
				if i+1 == n {
					if nx, perr := c.r.Peek(1); perr == nil && nx[0] == '\n' {
						continue
					}
				}
			}
			p[w] = p[i]
			w++
		}
		if w > 0 || err != nil || n == 0 {
			return w, err
		}
	}
}

// errPEMDecode is a PEM block that encoding/pem would not decode.
var errPEMDecode = errors.New("PEM data cannot be decoded")

// derFromPEM reads the DER content of fetch-crl's match (text,
// normalised) as encoding/pem.Decode would decode it: after the BEGIN
// line, "key: value" header lines are skipped, spaces and tabs dropped,
// and the rest up to the END line must be standard base64 (errPEMDecode
// otherwise).
func derFromPEM(text io.Reader) io.Reader {
	pb := &pemBase64{r: bufio.NewReaderSize(text, 64<<10), headers: true}
	return &pemDER{d: base64.NewDecoder(base64.StdEncoding, pb), pb: pb}
}

// pemDER maps base64 errors to errPEMDecode.
type pemDER struct {
	d  io.Reader
	pb *pemBase64
}

func (p *pemDER) Read(b []byte) (int, error) {
	n, err := p.d.Read(b)
	var ce base64.CorruptInputError
	switch {
	case err == nil, err == io.EOF:
	case p.pb.err != nil:
		err = p.pb.err
	case errors.As(err, &ce), errors.Is(err, io.ErrUnexpectedEOF):
		err = errPEMDecode
	}
	return n, err
}

// pemToDER copies derFromPEM(text) to w.
func pemToDER(text io.Reader, w io.Writer) error {
	_, err := io.Copy(w, derFromPEM(text))
	return err
}

// pemBase64 yields the base64 characters of a block's body: header lines
// skipped, white space dropped, up to the END line (the first line that
// starts with '-': the match has no other).
type pemBase64 struct {
	r         *bufio.Reader
	begun     bool // the BEGIN line was read
	headers   bool // still in the header lines
	lineStart bool
	pending   []byte
	done      bool
	err       error // a read error, or data after the padding
	count     int64 // base64 characters so far
	padded    bool  // a '=' was seen
}

func (p *pemBase64) Read(b []byte) (int, error) {
	if !p.begun {
		p.begun, p.lineStart = true, true
		if _, err := p.r.ReadSlice('\n'); err != nil {
			p.err = errPEMDecode
			return 0, p.err
		}
	}
	if p.err != nil {
		return 0, p.err
	}
	for len(p.pending) == 0 {
		if p.done {
			return 0, io.EOF
		}
		line, err := p.r.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull)
		switch {
		case p.lineStart && len(line) > 0 && line[0] == '-', err == io.EOF:
			p.done = true
			continue
		case err != nil && !full:
			p.err = fmt.Errorf("reading the download: %w", err)
			return 0, p.err
		}
		if p.headers && p.lineStart && bytes.IndexByte(line, ':') >= 0 && !full {
			continue
		}
		p.headers = false
		p.lineStart = !full
		p.pending = stripSpace(line)
		// base64.Decode refuses anything after a padded quantum; the
		// streaming decoder would not see it across reads.
		for _, c := range p.pending {
			if p.padded && p.count%4 == 0 {
				p.err = errPEMDecode
				return 0, p.err
			}
			p.padded = p.padded || c == '='
			p.count++
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// stripSpace drops spaces, tabs and line ends in place.
func stripSpace(b []byte) []byte {
	w := 0
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b[w] = c
			w++
		}
	}
	return b[:w]
}

// writePEM writes der as encoding/pem.Encode writes an "X509 CRL" block
// without headers: 64 base64 characters a line.
func writePEM(w io.Writer, der io.Reader) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(pemBegin)
	lb := &lineBreaker{w: bw}
	enc := base64.NewEncoder(base64.StdEncoding, lb)
	if _, err := io.Copy(enc, der); err != nil {
		return err
	}
	enc.Close()
	if lb.col > 0 {
		bw.WriteByte('\n')
	}
	bw.WriteString(pemEnd + "\n")
	return bw.Flush()
}

// lineBreaker inserts a newline after every 64 characters.
type lineBreaker struct {
	w   *bufio.Writer
	col int
}

func (l *lineBreaker) Write(p []byte) (int, error) {
	for _, c := range p {
		l.w.WriteByte(c)
		if l.col++; l.col == 64 {
			l.w.WriteByte('\n')
			l.col = 0
		}
	}
	return len(p), nil
}
