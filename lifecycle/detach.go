package lifecycle

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
)

// Environment variables by which a detaching parent hands its listening
// socket and a readiness pipe to the background child (private protocol
// between two copies of this program).
const (
	envListenFD = "DIRMNGR_GO_LISTEN_FD"
	envReadyFD  = "DIRMNGR_GO_READY_FD"
)

// Detach starts this program again in the background (new session, stdio on
// /dev/null, working directory /) serving ln, and waits until the child
// reports that it is ready. It returns the child's pid. The socket file
// stays in place: it now belongs to the child.
func Detach(ln *net.UnixListener, args []string, timeout time.Duration) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding own executable: %w", err)
	}
	lf, err := ln.File()
	if err != nil {
		return 0, fmt.Errorf("duplicating listener: %w", err)
	}
	defer lf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("creating pipe: %w", err)
	}
	defer pr.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		pw.Close()
		return 0, err
	}
	defer null.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), envListenFD+"=3", envReadyFD+"=4")
	cmd.ExtraFiles = []*os.File{lf, pw}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return 0, fmt.Errorf("starting background process: %w", err)
	}
	pw.Close()
	pid := cmd.Process.Pid
	cmd.Process.Release()

	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(pr).ReadString('\n')
		ch <- result{strings.TrimSpace(line), err}
	}()
	select {
	case r := <-ch:
		if r.line == "ok" {
			ln.SetUnlinkOnClose(false)
			return pid, nil
		}
		if r.line == "" {
			return 0, fmt.Errorf("background process %d exited during start-up", pid)
		}
		return 0, errors.New(r.line)
	case <-time.After(timeout):
		return 0, fmt.Errorf("background process %d did not become ready within %s", pid, timeout)
	}
}

// Inherited returns the listener handed over by a detaching parent (nil if
// this process was not started by Detach) and a function to report
// readiness (nil error) or a start-up failure to the parent.
func Inherited() (net.Listener, func(error), error) {
	if os.Getenv(envListenFD) == "" {
		return nil, nil, nil
	}
	lf := os.NewFile(3, "listener")
	rf := os.NewFile(4, "ready")
	os.Unsetenv(envListenFD)
	os.Unsetenv(envReadyFD)
	ln, err := net.FileListener(lf)
	lf.Close()
	ready := func(err error) {
		if rf == nil {
			return
		}
		if err == nil {
			fmt.Fprintln(rf, "ok")
		} else {
			fmt.Fprintln(rf, strings.ReplaceAll(err.Error(), "\n", " "))
		}
		rf.Close()
		rf = nil
	}
	if err != nil {
		ready(err)
		return nil, nil, fmt.Errorf("inherited listener: %w", err)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(true)
	}
	return ln, ready, nil
}

// Supervised returns the listening socket passed by systemd (LISTEN_FDS)
// and its path.
func Supervised() (net.Listener, string, error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, "", fmt.Errorf("systemd socket activation: %w", err)
	}
	var ln net.Listener
	for _, l := range lns {
		if l == nil {
			continue
		}
		if ln != nil {
			l.Close()
			continue
		}
		ln = l
	}
	if ln == nil {
		return nil, "", errors.New("no listening socket passed by systemd (LISTEN_FDS)")
	}
	path := ""
	if a, ok := ln.Addr().(*net.UnixAddr); ok {
		path = a.Name
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false) // systemd owns the socket file
	}
	return ln, path, nil
}

// InfoLine returns the DIRMNGR_INFO line `dirmngr --daemon` prints, in
// csh or Bourne shell syntax.
func InfoLine(socket string, pid int, csh bool) string {
	v := fmt.Sprintf("%s:%d:1", socket, pid)
	if csh {
		return "setenv DIRMNGR_INFO " + v + ";"
	}
	return "DIRMNGR_INFO=" + v + "; export DIRMNGR_INFO;"
}
