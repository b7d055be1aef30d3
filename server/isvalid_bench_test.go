package server_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/dirmngr/dirmngr/assuan"
)

// BenchmarkISValidSession: the daemon's handling of one ISVALID on a
// cached CRL (a revoked certificate), through the dispatcher and the
// handlers of a live session, without the socket: what the daemon adds to
// a command's round trip besides the system calls (docs/performance.md).
func BenchmarkISValidSession(b *testing.B) {
	be := newFuzzBackend(b)
	srvEnd, cli := net.Pipe()
	defer cli.Close()
	go be.srv.ServeConn(context.Background(), srvEnd, 1, assuan.PeerCred{})
	r := bufio.NewReader(cli)
	// reply reads up to the final line, answering inquiries with ans.
	reply := func(ans map[string]string) string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			switch {
			case strings.HasPrefix(line, "INQUIRE "):
				what := strings.Fields(line)[1]
				a, ok := ans[what]
				if !ok {
					b.Fatalf("unexpected %s", strings.TrimSpace(line))
				}
				cli.Write([]byte(a))
			case strings.HasPrefix(line, "OK"), strings.HasPrefix(line, "ERR"):
				return strings.TrimSpace(line)
			}
		}
	}
	reply(nil) // greeting
	cli.Write([]byte("LOADCRL " + be.crl + "\n"))
	if got := reply(map[string]string{"SENDCERT": dLines(be.root), "SENDCERT_SKI": dLines(be.root), "ISTRUSTED": "D 1\nEND\n"}); got != "OK" {
		b.Fatalf("LOADCRL: %s", got)
	}
	cmd := []byte("ISVALID " + be.id + "\n")
	trust := map[string]string{"ISTRUSTED": "D 1\nEND\n"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		cli.Write(cmd)
		if got := reply(trust); !strings.HasPrefix(got, "ERR 167772254") {
			b.Fatalf("ISVALID: %s", got)
		}
	}
}
