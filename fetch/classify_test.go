package fetch

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/dirmngr/dirmngr/gpgerr"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestClassify covers the failures a loopback test cannot provoke: a
// connect timeout, unreachable networks and hosts, a reset.
func TestClassify(t *testing.T) {
	dial := func(err error) error {
		return &url.Error{Op: "Get", URL: "http://h/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: err}}
	}
	read := func(err error) error {
		return &url.Error{Op: "Get", URL: "http://h/x", Err: &net.OpError{Op: "read", Net: "tcp", Err: err}}
	}
	cases := []struct {
		err     error
		text    string
		connect bool
	}{
		{dial(timeoutErr{}), "Connection timed out", true},
		{dial(os.NewSyscallError("connect", syscall.ENETUNREACH)), "Network is unreachable", true},
		{dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), "No route to host", true},
		{dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), "Connection refused", true},
		{read(os.NewSyscallError("read", syscall.ECONNRESET)), "Connection reset by peer", false},
		{dial(&net.DNSError{Err: "no such host", Name: "h", IsNotFound: true}), "No name", true},
		{dial(&net.DNSError{Err: "timeout", Name: "h", IsTimeout: true}), "Timeout", true},
		{read(errors.New("tls: bad record MAC")), "No data", false},
	}
	for _, tc := range cases {
		err := transportError(context.Background(), "http://h/x", tc.err)
		var te *TransportError
		if !errors.As(err, &te) || gpgerr.CodeOf(err).Error() != tc.text || te.Connect != tc.connect {
			t.Errorf("%v → %v (code %q, connect %v), want %q connect %v", tc.err, err, gpgerr.CodeOf(err).Error(), te != nil && te.Connect, tc.text, tc.connect)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := transportError(ctx, "u", dial(context.Canceled)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
