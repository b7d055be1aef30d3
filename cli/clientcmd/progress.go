package clientcmd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dirmngr/dirmngr/cli"
)

// progressText renders a PROGRESS status ("<what> <char> <cur> <total>
// [<units>]", GnuPG's format) for people: "" for a bare tick (a wait
// without counts).
func progressText(args string) string {
	f := strings.Fields(args)
	if len(f) < 4 || f[0] == "tick" {
		return ""
	}
	cur, err1 := strconv.ParseInt(f[2], 10, 64)
	total, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return ""
	}
	what, unit := f[0], "entries"
	if what == "load_crl" {
		what = "loading CRL"
	}
	if len(f) > 4 {
		unit = f[4]
	}
	if total > 0 {
		return fmt.Sprintf("%s: %d of %d %s", what, cur, total, unit)
	}
	return fmt.Sprintf("%s: %d %s read", what, cur, unit)
}

// progress shows a PROGRESS status: rewritten in place on a terminal, one
// line each at --verbose otherwise.
func (r *clientRun) progress(args string) {
	text := progressText(args)
	if text == "" || r.o.quiet {
		return
	}
	switch {
	case cli.IsTerminal(r.errOut):
		fmt.Fprintf(r.errOut, "\rdirmngr-client: %s ...", text)
		r.progLine = true
	case r.o.verbose > 0:
		fmt.Fprintf(r.errOut, "dirmngr-client: %s ...\n", text)
	}
}

// endProgress clears a progress line left on the terminal.
func (r *clientRun) endProgress() {
	if r.progLine {
		fmt.Fprint(r.errOut, "\r\033[K")
		r.progLine = false
	}
}
