package crl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// PEM input is decoded as it is read: the lines before the CRL's BEGIN
// line are scanned one at a time, the base64 body is filtered and decoded
// in chunks, and nothing is ever held whole. Memory is a few buffers
// whatever the input; the bytes read are bounded by pemBudget, the text
// before the block by maxPEMText and a run of white space in the block by
// maxPEMSpace, so that an endless body of text or blanks fails early.
const (
	maxPEMText  = 1 << 20
	maxPEMSpace = 64 << 10
)

// pemBudget is the most input read for a DER size cap of max: base64's
// 4/3 plus line ends, and 64 KiB of text around the block.
func pemBudget(max int64) int64 { return max/2*3 + 64<<10 }

var errNotCRL = errBER("neither DER nor a PEM encoded CRL")

// openPEM finds the first "X509 CRL" (or "CRL") PEM block in r, as
// encoding/pem would, and returns a reader of its DER content. Other
// blocks and text before it are skipped; binary data (control bytes) is
// refused at once, so /dev/urandom or a compressed body fails fast.
func openPEM(r *bufio.Reader, max int64) (io.Reader, error) {
	budget := pemBudget(max)
	text := int64(0)
	for {
		line, err := r.ReadSlice('\n')
		budget -= int64(len(line))
		text += int64(len(line))
		if budget < 0 {
			return nil, ErrTooLarge
		}
		if text > maxPEMText {
			return nil, errBER("no PEM encoded CRL in the first %d bytes", maxPEMText)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				return nil, errNotCRL
			}
			return nil, errReading(err)
		}
		for _, c := range line {
			if c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
				return nil, errNotCRL
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a long line of text: never a BEGIN line
		}
		typ, ok := pemBoundary(line, "-----BEGIN ")
		if !ok || (typ != "X509 CRL" && typ != "CRL") {
			continue
		}
		if err := skipPEMHeaders(r, &budget); err != nil {
			return nil, err
		}
		body := &pemBody{r: r, left: budget, end: "-----END " + typ + "-----", lineNL: true}
		return &pemDecoder{d: base64.NewDecoder(base64.StdEncoding, body)}, nil
	}
}

// pemBoundary returns the type of a "-----BEGIN TYPE-----" line.
func pemBoundary(line []byte, prefix string) (string, bool) {
	line = bytes.TrimRight(line, " \t\r\n")
	if !bytes.HasPrefix(line, []byte(prefix)) || !bytes.HasSuffix(line, []byte("-----")) || len(line) < len(prefix)+5 {
		return "", false
	}
	return string(line[len(prefix) : len(line)-5]), true
}

// skipPEMHeaders skips RFC 1421 headers ("Name: value" lines up to a blank
// line) at the start of a block, as encoding/pem does.
func skipPEMHeaders(r *bufio.Reader, budget *int64) error {
	peek, _ := r.Peek(256)
	if i := bytes.IndexByte(peek, '\n'); i < 0 || !bytes.Contains(peek[:i], []byte(":")) {
		return nil
	}
	for {
		line, err := r.ReadSlice('\n')
		*budget -= int64(len(line))
		if *budget < 0 {
			return ErrTooLarge
		}
		if err != nil {
			if err == io.EOF || errors.Is(err, bufio.ErrBufferFull) {
				return errBER("PEM: bad header")
			}
			return errReading(err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return nil
		}
	}
}

// pemBody yields the base64 characters of a block without white space and
// ends (io.EOF) at a correct END line.
type pemBody struct {
	r      *bufio.Reader
	left   int64
	end    string
	space  int  // current run of white space
	lineNL bool // the last byte was a line feed (END must start a line)
	err    error
}

func (b *pemBody) Read(p []byte) (int, error) {
	for b.err == nil {
		if b.left <= 0 {
			b.err = ErrTooLarge
			break
		}
		n, err := b.r.Read(p[:min(int64(len(p)), b.left)])
		b.left -= int64(n)
		w := 0
		for i, c := range p[:n] {
			switch c {
			case ' ', '\t', '\r', '\n':
				b.lineNL = c == '\n'
				if b.space++; b.space > maxPEMSpace {
					b.err = errBER("PEM: %d blank bytes in a row", b.space)
					return w, nil
				}
			case '-':
				if !b.lineNL {
					b.err = errBER("PEM: the END line does not start a line")
				} else {
					b.err = b.finish(p[i:n])
				}
				return w, nil
			default:
				p[w] = c
				w++
				b.space, b.lineNL = 0, false
			}
		}
		if err == io.EOF {
			b.err = errBER("PEM: truncated (no END line)")
		} else if err != nil {
			b.err = errReading(err)
		}
		if w > 0 {
			return w, nil
		}
	}
	return 0, b.err
}

// finish checks the END line that starts with start; io.EOF if it is right.
func (b *pemBody) finish(start []byte) error {
	line := append([]byte(nil), start...)
	if bytes.IndexByte(line, '\n') < 0 {
		rest, err := b.r.ReadSlice('\n')
		if err != nil && err != io.EOF {
			return errBER("PEM: bad END line")
		}
		line = append(line, rest...)
	}
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if string(bytes.TrimRight(line, " \t\r")) != b.end {
		return errBER("PEM: bad END line")
	}
	return io.EOF
}

// pemDecoder turns base64 errors into BER errors.
type pemDecoder struct{ d io.Reader }

func (p *pemDecoder) Read(b []byte) (int, error) {
	n, err := p.d.Read(b)
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		err = errBER("PEM: bad base64 at offset %d", int64(ce))
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errBER("PEM: base64 cut short") // not a multiple of 4 characters
	}
	return n, err
}

func errReading(err error) error { return fmt.Errorf("crl: reading: %w", err) }
