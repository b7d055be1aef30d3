package fetchcrl

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// A state file's b64data (the whole last download, base64 on one line)
// is never read into memory: readState notes where the value lies in the
// file, kept open, and writeState copies it back or encodes a new
// download from its spool file.

// stateData is an index's b64data: a span of its state file as read, or a
// new download to encode.
type stateData struct {
	file   *os.File
	off, n int64
	body   *body
}

// present reports whether there is data.
func (d stateData) present() bool {
	return d.body != nil && d.body.size > 0 || d.body == nil && d.file != nil && d.n > 0
}

// write copies the base64 text to w.
func (d stateData) write(w io.Writer) error {
	if d.body != nil {
		enc := base64.NewEncoder(base64.StdEncoding, w)
		if _, err := io.Copy(enc, d.body.reader()); err != nil {
			return err
		}
		return enc.Close()
	}
	_, err := io.Copy(w, io.NewSectionReader(d.file, d.off, d.n))
	return err
}

// decode spools the data as a body in dir.
func (d stateData) decode(dir string) (*body, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(d.write(pw)) }()
	defer pr.Close()
	return decodeBase64(dir, pr)
}

// maxStateText bounds a state file's content other than b64data.
const maxStateText = 1 << 20

// readState reads the section of a state file, with its b64data as a span
// of the file (which stays open; the caller closes it).
func readState(path, section string) (state, stateData, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, stateData{}, err
	}
	var text bytes.Buffer
	var data stateData
	br := bufio.NewReaderSize(f, 64<<10)
	var off int64
	sect := "_"
	for {
		line, err := br.ReadSlice('\n')
		start := off
		off += int64(len(line))
		if span, ok := b64Value(line); ok {
			n, end, rerr := valueSpan(br, line, err, span)
			off = start + end
			if rerr != nil {
				f.Close()
				return nil, stateData{}, rerr
			}
			if sect == section {
				data = stateData{file: f, off: start + span, n: n}
			}
			if err == nil || errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
		} else {
			if t := bytes.TrimSpace(line); len(t) > 1 && t[0] == '[' && t[len(t)-1] == ']' {
				sect = string(bytes.TrimSpace(t[1 : len(t)-1]))
			}
			text.Write(line)
		}
		if text.Len() > maxStateText {
			f.Close()
			return nil, stateData{}, fmt.Errorf("%s: state file too large", path)
		}
		if err == io.EOF {
			break
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			f.Close()
			return nil, stateData{}, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	tiny := Tiny{}
	if err := ParseTiny(&text, path, tiny, nil); err != nil {
		f.Close()
		return nil, stateData{}, err
	}
	if data.file == nil {
		f.Close()
	}
	st := state{}
	for k, v := range tiny[section] {
		st[k] = v
	}
	return st, data, nil
}

// b64Value returns the offset of the value in a "b64data=" line (blanks
// around the key and after '=' skipped).
func b64Value(line []byte) (int64, bool) {
	t := bytes.TrimLeft(line, " \t")
	rest, ok := bytes.CutPrefix(t, []byte("b64data"))
	if !ok {
		return 0, false
	}
	rest = bytes.TrimLeft(rest, " \t")
	if len(rest) == 0 || rest[0] != '=' {
		return 0, false
	}
	rest = bytes.TrimLeft(rest[1:], " \t")
	return int64(len(line) - len(rest)), true
}

// valueSpan reads the rest of a b64data line whose first fragment is
// first (err from reading it) and returns the length of the value
// starting at span, without trailing blanks and line end, and the end of
// the line (both from the line's start).
func valueSpan(br *bufio.Reader, first []byte, err error, span int64) (n, end int64, rerr error) {
	end = int64(len(first))
	lastNonBlank := int64(0)
	note := func(frag []byte, at int64) {
		if i := bytes.LastIndexFunc(frag, func(r rune) bool { return r != ' ' && r != '\t' && r != '\r' && r != '\n' }); i >= 0 {
			lastNonBlank = at + int64(i) + 1
		}
	}
	note(first[span:], span)
	for errors.Is(err, bufio.ErrBufferFull) {
		var frag []byte
		frag, err = br.ReadSlice('\n')
		note(frag, end)
		end += int64(len(frag))
	}
	if err != nil && err != io.EOF {
		return 0, 0, fmt.Errorf("reading the state: %w", err)
	}
	return max(0, lastNonBlank-span), end, nil
}

// writeState writes one section as fetch-crl writes its state files
// ("[name]" then sorted "key=value" lines), b64data from data.
func writeState(w io.Writer, name string, kv state, data stateData) error {
	keys := make([]string, 0, len(kv)+1)
	for k := range kv {
		if k != "b64data" {
			keys = append(keys, k)
		}
	}
	if data.present() {
		keys = append(keys, "b64data")
	}
	sort.Strings(keys)
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "[%s]\n", name)
	for _, k := range keys {
		if k != "b64data" {
			fmt.Fprintf(bw, "%s=%s\n", k, kv[k])
			continue
		}
		bw.WriteString("b64data=")
		if err := data.write(bw); err != nil {
			return err
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
