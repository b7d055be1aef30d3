package assuan

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/dirmngr/dirmngr/gpgerr"
)

// TestReplyLines: the OK and ERR lines of a reply, byte for byte as
// libassuan writes them, and an ERR line costs no allocation.
func TestReplyLines(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ok", nil, "OK\n"},
		{"revoked, the server's source", gpgerr.ErrCertRevoked, "ERR 167772254 Certificate revoked <Dirmngr>\n"},
		{"with a detail", gpgerr.NewError(gpgerr.ErrAssParameter, "bad\nserial"), "ERR 167772440 IPC parameter error <Dirmngr> - bad\\nserial\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			s := &Session{srv: &Server{ErrorSource: gpgerr.SourceDirmngr}, w: bufio.NewWriter(&out)}
			if err := s.reply(tc.err); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("reply = %q, want %q", out.String(), tc.want)
			}
		})
	}
	var out bytes.Buffer
	s := &Session{srv: &Server{ErrorSource: gpgerr.SourceDirmngr}, w: bufio.NewWriter(&out)}
	allocs := testing.AllocsPerRun(100, func() {
		out.Reset()
		s.reply(gpgerr.ErrCertRevoked)
	})
	if allocs > 0 {
		t.Errorf("an ERR reply costs %.1f allocations, want 0", allocs)
	}
}
