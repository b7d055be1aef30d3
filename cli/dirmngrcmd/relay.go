package dirmngrcmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/lifecycle"
)

// relaySession serves a --server session whose CRL cache a running daemon
// holds: the session is relayed byte for byte to that daemon's socket, so
// the client gets the daemon's greeting and answers exactly as if it had
// connected there (GnuPG allows --server beside its daemon). Without a
// daemon to relay to, it says on stderr why the session cannot be served.
func relaySession(loaded *config.Loaded, in io.Reader, out, errOut io.Writer) error {
	path, err := lifecycle.DefaultSocketPath(loaded, false)
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: the CRL cache is in use by another process, and the dirmngr socket is unknown: %v\n", err)
		return cli.ExitError{Code: 2}
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: the CRL cache in '%s' is in use by another process, and no dirmngr answers on '%s' to serve this session - stop that process or use its socket\n",
			loaded.Dirs.Cache, path)
		return cli.ExitError{Code: 2}
	}
	defer conn.Close()
	if loaded.Opts.Verbose > 0 && !loaded.Opts.Quiet {
		fmt.Fprintf(errOut, "dirmngr: the CRL cache is in use by the running dirmngr - relaying this session to it on '%s'\n", path)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(conn, in)
		if uc, ok := conn.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	}()
	_, err = io.Copy(out, conn)
	// The daemon ended the session (BYE, KILLDIRMNGR or its exit); the
	// client's side is not waited for: it may never close its input.
	if err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(errOut, "dirmngr: relaying the session to '%s' failed: %v\n", path, err)
		return cli.ExitError{Code: 2}
	}
	return nil
}
