package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/lifecycle"
)

// The floor of the ISVALID rate benchmarks: this test binary, re-run as a
// separate process with floorEnv set, serves Assuan on a Unix socket with
// the project's assuan package and the daemon's session I/O, and
// answers every ISVALID with OK at once (no parsing, no lookup). Its rate
// through leanClient is what the protocol, Go's runtime and the kernel
// cost per command on this machine: no daemon built on them answers
// faster, whatever its lookups cost.

// floorEnv names the socket the floor server listens on.
const floorEnv = "DIRMNGR_BENCH_FLOOR_SOCKET"

// serveFloor runs the floor server until the process is killed; it
// returns an exit code.
func serveFloor(sock string) int {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor server:", err)
		return 1
	}
	srv := &assuan.Server{
		Hello:       []string{"floor"},
		IdleTimeout: time.Hour,
		Commands:    []assuan.Command{{Name: "ISVALID", Handler: func(*assuan.Session, string) error { return nil }}},
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0
			}
			fmt.Fprintln(os.Stderr, "floor server:", err)
			return 1
		}
		go func() {
			rc := lifecycle.RawConn(c)
			defer rc.Close()
			srv.ServeConn(context.Background(), rc, nil)
		}()
	}
}

// startFloor starts the floor server and returns it as a benchDaemon
// (no CRL, no load figures).
func startFloor(b *testing.B) *benchDaemon {
	dir := newHome(b)
	d := &benchDaemon{prog: "floor", home: dir, sock: filepath.Join(dir, "S.floor")}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floorEnv+"="+d.sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("floor server: %v", err)
	}
	d.pid = cmd.Process.Pid
	b.Cleanup(func() {
		syscall.Kill(d.pid, syscall.SIGKILL)
		cmd.Wait()
	})
	waitFor(b, 10*time.Second, func() bool {
		_, err := os.Stat(d.sock)
		return err == nil
	}, "the floor server's socket")
	return d
}
