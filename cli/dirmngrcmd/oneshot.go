package dirmngrcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/lifecycle"
	"github.com/dirmngr/dirmngr/logging"
	"github.com/dirmngr/dirmngr/revocation"
	"github.com/dirmngr/dirmngr/server"
	"github.com/dirmngr/dirmngr/services"
)

// runOneShot implements --list-crls, --load-crl, --fetch-crl and --flush.
// They work on the CRL cache directly; when a running daemon holds the
// cache they are sent to it over its socket instead.
func runOneShot(command string, loaded *config.Loaded, operands []string, out, errOut io.Writer) error {
	o := loaded.Opts
	lvl := new(slog.LevelVar)
	dbg, _ := config.DebugLevelValue(o.DebugLevel)
	lvl.Set(logging.Level(o.Quiet, o.Verbose, dbg))
	log := slog.New(logging.NewHandler(logging.NewOutput(errOut), "dirmngr", false, lvl))
	if (command == "load-crl" || command == "fetch-crl") && len(operands) == 0 {
		fmt.Fprintf(errOut, "dirmngr: --%s needs at least one %s\n", command, map[string]string{"load-crl": "file name", "fetch-crl": "URL"}[command])
		return cli.ExitError{Code: 2}
	}
	live, err := services.Open(loaded, false, log)
	if errors.Is(err, crlcache.ErrLocked) {
		return viaDaemon(command, loaded, operands, out, errOut)
	}
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: %v\n", err)
		return cli.ExitError{Code: 2}
	}
	defer live.Close()
	set := live.Current()
	ctx := context.Background()
	req := &revocation.Request{}
	switch {
	case cli.IsTerminal(errOut) && !o.Quiet:
		// A progress line for long loads on a terminal.
		req.Progress = func(n int64) {
			fmt.Fprintf(errOut, "\rdirmngr: %d entries read ...", n)
		}
		defer fmt.Fprint(errOut, "\r\033[K")
	case o.Verbose > 0 && !o.Quiet:
		req.Progress = func(n int64) {
			fmt.Fprintf(errOut, "dirmngr: %d entries read ...\n", n)
		}
	}
	failed := false
	switch command {
	case "list-crls":
		if err := server.WriteCRLList(out, set.Cache); err != nil {
			fmt.Fprintf(errOut, "dirmngr: listing the CRL cache failed: %v\n", err)
			return cli.ExitError{Code: 2}
		}
	case "flush":
		if err := set.Cache.Flush(); err != nil {
			fmt.Fprintf(errOut, "dirmngr: flushing the CRL cache failed: %v\n", err)
			return cli.ExitError{Code: 2}
		}
	case "load-crl":
		for _, name := range operands {
			if _, err := set.CRL.LoadFile(ctx, req, name); err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					// GnuPG's words, the cause once.
					fmt.Fprintf(errOut, "dirmngr: can't open '%s': %s\n", name, gpgerr.CodeOf(err).Error())
				} else {
					fmt.Fprintf(errOut, "dirmngr: processing CRL from '%s' failed: %s\n", name, errText(err))
				}
				failed = true
			} else if o.Verbose > 0 {
				fmt.Fprintf(errOut, "dirmngr: CRL from '%s' loaded\n", name)
			}
		}
	case "fetch-crl":
		for _, u := range operands {
			if err := set.CRL.Fetch(ctx, req, u); err != nil {
				fmt.Fprintf(errOut, "dirmngr: fetching CRL from '%s' failed: %s\n", u, errText(err))
				failed = true
			} else if o.Verbose > 0 {
				fmt.Fprintf(errOut, "dirmngr: CRL from '%s' loaded\n", u)
			}
		}
	}
	if failed {
		return cli.ExitError{Code: 1} // GnuPG's status for a CRL that failed to load
	}
	return nil
}

// errText is the gpg-error text of err followed, once, by what its cause
// adds ("CRL too old", not "CRL too old (revocation: CRL too old: CRL too
// old)").
// A transport failure is said once, as GnuPG does ("… failed: Connection
// refused").
func errText(err error) string {
	var te *fetch.TransportError
	if errors.As(err, &te) {
		return te.Cause
	}
	text := gpgerr.CodeOf(err).Error()
	cause := err.Error()
	for _, p := range []string{"revocation: ", "crlcache: ", "fetch: "} {
		cause = strings.ReplaceAll(cause, p, "")
	}
	cause = strings.TrimSuffix(strings.TrimPrefix(cause, text+": "), ": "+text)
	cause = strings.TrimSuffix(cause, ": "+strings.ToLower(text))
	if cause == "" || strings.EqualFold(cause, text) {
		return text
	}
	return fmt.Sprintf("%s (%s)", text, cause)
}

// viaDaemon sends the one-shot command to the daemon that holds the cache.
func viaDaemon(command string, loaded *config.Loaded, operands []string, out, errOut io.Writer) error {
	path, err := lifecycle.DefaultSocketPath(loaded, false)
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: %v\n", err)
		return cli.ExitError{Code: 2}
	}
	c, err := assuan.Dial(path)
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: the CRL cache is locked by another process and no dirmngr answers on %s: %v\n", path, err)
		return cli.ExitError{Code: 2}
	}
	defer c.Close()
	var lines []string
	switch command {
	case "list-crls":
		lines = []string{"LISTCRLS"}
	case "flush":
		lines = []string{"FLUSHCRLS"}
	case "load-crl":
		for _, f := range operands {
			abs, err := filepath.Abs(f)
			if err != nil {
				abs = f
			}
			lines = append(lines, "LOADCRL "+assuan.EscapePlus(abs))
		}
	case "fetch-crl":
		for _, u := range operands {
			lines = append(lines, "LOADCRL --url "+assuan.EscapePlus(u))
		}
	}
	h := &assuan.Handlers{Data: func(p []byte) error { _, err := out.Write(p); return err }}
	failed := false
	for i, l := range lines {
		if err := c.Transact(context.Background(), l, h); err != nil {
			what := "the running dirmngr"
			if i < len(operands) {
				what = "'" + operands[i] + "'"
			}
			fmt.Fprintf(errOut, "dirmngr: %s via the running dirmngr failed for %s: %s\n", strings.ToLower(strings.Fields(l)[0]), what, gpgerr.CodeOf(err).Error())
			failed = true
		}
	}
	if failed {
		return cli.ExitError{Code: 1}
	}
	return nil
}
