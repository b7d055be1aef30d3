// Package cli holds what the three programs' command trees share: the exit
// status carried through cobra, the version, and the terminal test. Each
// program's tree lives in its own subpackage (dirmngrcmd, clientcmd,
// fetchcrlcmd); mandoc renders the man pages and dirmngr.conf.example from
// them.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ProgramVersion is this implementation's own version.
const ProgramVersion = "0.1.0"

// GnuPGVersion is the GnuPG release whose behaviour the programs match.
const GnuPGVersion = "2.2.40"

// ExitError carries a process exit status through cobra.
type ExitError struct{ Code int }

// Error describes the exit status.
func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Exit ends a program after its command tree ran: nothing happens when err
// is nil, an ExitError exits with its code, any other error is printed as
// "<prog>: <err>" and exits with status.
func Exit(prog string, err error, status int) {
	if err == nil {
		return
	}
	var ee ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.Code)
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(status)
}

// IsTerminal reports whether w is a terminal (not merely a character device
// such as /dev/null).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
