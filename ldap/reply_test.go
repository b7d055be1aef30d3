package ldap

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// replyLimitForTests is the process-wide reply bound these tests run with.
const replyLimitForTests = 1 << 20

// fakeServer answers every search with the entries that entry(i) returns
// (nil ends the list) and counts the entries it managed to send.
func fakeServer(t *testing.T, entry func(i int) []byte) (port int, sent *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	sent = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFake(c, entry, sent)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, sent
}

func serveFake(c net.Conn, entry func(i int) []byte, sent *atomic.Int64) {
	defer c.Close()
	for {
		req, err := ber.ReadPacket(c)
		if err != nil || len(req.Children) < 2 {
			return
		}
		id := req.Children[0].Value.(int64)
		if req.Children[1].Tag != 3 { // not a SearchRequest (an unbind): done
			return
		}
		for i := 0; ; i++ {
			val := entry(i)
			if val == nil {
				break
			}
			if _, err := c.Write(searchEntry(id, "cn=ca", "certificateRevocationList;binary", val)); err != nil {
				return
			}
			sent.Add(1)
		}
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 5, nil, "SearchResultDone")
		op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
		op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnostic"))
		if _, err := c.Write(envelope(id, op).Bytes()); err != nil {
			return
		}
	}
}

func envelope(id int64, op *ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "messageID"))
	p.AppendChild(op)
	return p
}

func searchEntry(id int64, dn, attr string, val []byte) []byte {
	e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "SearchResultEntry")
	e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, "objectName"))
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attributes")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "attribute")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, "type"))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "vals")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(val), "value"))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	e.AppendChild(attrs)
	return envelope(id, e).Bytes()
}

// TestFetchReplyBounds: an LDAP server that ignores the size limit and
// sends entry after entry costs one reply (the first entry ends the
// search), and a reply larger than the bound fails with a clear error
// instead of being read into memory (threats-and-tests §4.C 20).
func TestFetchReplyBounds(t *testing.T) {
	LimitReplySize(replyLimitForTests)
	first := bytes.Repeat([]byte{0x30}, 1000)
	tests := []struct {
		name    string
		entry   func(i int) []byte
		want    []byte
		wantErr bool
		maxSent int64
	}{
		{"one entry", func(i int) []byte {
			if i == 0 {
				return first
			}
			return nil
		}, first, false, 1},
		{"endless entries", func(i int) []byte { return append([]byte(strconv.Itoa(i)), first...) },
			append([]byte("0"), first...), false, 1 << 16},
		{"reply over the bound", func(i int) []byte {
			if i == 0 {
				return make([]byte, 2*replyLimitForTests)
			}
			return nil
		}, nil, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port, sent := fakeServer(t, tc.entry)
			o := &Options{Timeout: 5 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := o.FetchURL(ctx, nil, "ldap://127.0.0.1:"+strconv.Itoa(port)+"/cn=ca?certificateRevocationList")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %d bytes, want an error", len(got))
				}
				if !strings.Contains(err.Error(), "greater than maximum") {
					t.Fatalf("error %v, want the reply bound's", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FetchURL: %v", err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes %q…, want the first entry's value", len(got), got[:min(8, len(got))])
			}
			// The client stopped reading after the first entry: the
			// server could only push what the socket buffers hold.
			time.Sleep(200 * time.Millisecond)
			if n := sent.Load(); n > tc.maxSent {
				t.Errorf("server sent %d entries before the client hung up, want ≤ %d", n, tc.maxSent)
			}
		})
	}
}
