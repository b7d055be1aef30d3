package assuan_test

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures one NOP round trip over a Unix socket with
// an idle timeout set (as the daemon runs), client and server in this
// process.
func BenchmarkRoundTrip(b *testing.B) {
	srv := testServer()
	srv.IdleTimeout = time.Hour
	ln, err := net.Listen("unix", filepath.Join(b.TempDir(), "S"))
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		srv.ServeConn(context.Background(), c, nil)
	}()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for range 2 {
		r.ReadString('\n') // the greeting
	}
	b.ResetTimer()
	for range b.N {
		c.Write([]byte("NOP\n"))
		if l, err := r.ReadString('\n'); l != "OK\n" || err != nil {
			b.Fatalf("got %q, %v", l, err)
		}
	}
}
