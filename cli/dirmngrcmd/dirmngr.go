// Package dirmngrcmd is the dirmngr program: its option handling, --help,
// the daemon and server modes, and the one-shot commands (--list-crls,
// --load-crl, --fetch-crl, --flush). cmd/dirmngr only calls NewCommand.
package dirmngrcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/lifecycle"
	"github.com/dirmngr/dirmngr/server"
)

// NewCommand returns the dirmngr command. GnuPG's dirmngr has no
// subcommands: its "commands" are options such as --server or --list-crls.
func NewCommand() *cobra.Command {
	var opts = config.Defaults()
	cmd := &cobra.Command{
		Use:   "dirmngr [options] [command [args]]",
		Short: "CRL and OCSP daemon for gpgsm (GnuPG dirmngr compatible)",
		Long: "dirmngr manages and downloads certificate revocation lists (CRLs) for X.509\n" +
			"certificates, answers OCSP checks and looks up certificates, for gpgsm and\n" +
			"dirmngr-client. It speaks GnuPG's Assuan protocol on a Unix socket (--daemon,\n" +
			"--supervised) or on stdin/stdout (--server, the default).",
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
		// config.Load parses the options itself, GnuPG's way (abbreviations,
		// GnuPG's error words); the flags are registered for the man page.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDirmngr(cmd, os.Args[1:])
		},
	}
	cmd.Flags().SortFlags = false
	opts.Register(cmd.Flags())
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) { writeHelp(c.OutOrStdout(), &opts) })
	return cmd
}

// writeHelp prints GnuPG-style grouped help.
func writeHelp(w io.Writer, o *config.Options) {
	fmt.Fprintf(w, "dirmngr %s (GnuPG dirmngr %s compatible)\n\n", cli.ProgramVersion, server.Version)
	fmt.Fprintln(w, "Syntax: dirmngr [options] [command [args]]")
	fmt.Fprintln(w, "Keyserver, CRL, and OCSP access for gpgsm")
	for _, g := range config.HelpGroups(o.Defs()) {
		fmt.Fprintf(w, "\n%s:\n", g.Name)
		for _, d := range g.Defs {
			short := "    "
			if d.Short != "" {
				short = " -" + d.Short + ","
			}
			name := "--" + d.Name
			if d.ArgName != "" {
				name += " " + d.ArgName
			}
			fmt.Fprintf(w, "%s %-28s %s\n", short, name, d.Help)
		}
	}
	fmt.Fprintln(w, "\nWithout a command, dirmngr runs in server mode (--server).")
	fmt.Fprintln(w, "See the dirmngr(8) manual page for all options.")
}

func runDirmngr(cmd *cobra.Command, args []string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if config.WantsGpgconfTest(args) {
		return gpgconfTest(args, errOut)
	}
	loaded, err := config.Load(args)
	if err != nil {
		var oe *config.OptionError
		if errors.As(err, &oe) {
			fmt.Fprintln(errOut, oe.Msg) // as GnuPG: no program name
		} else {
			fmt.Fprintf(errOut, "dirmngr: %v\n", err)
		}
		return cli.ExitError{Code: 2}
	}
	o := loaded.Opts
	cmds := o.Commands()
	if len(cmds) > 1 {
		fmt.Fprintf(errOut, "dirmngr: conflicting commands --%s\n", strings.Join(cmds, " --"))
		return cli.ExitError{Code: 2}
	}
	command := "server"
	if len(cmds) == 1 {
		command = cmds[0]
	}
	if done, err := infoCommand(command, o, out); done {
		return err
	}
	switch command {
	case "list-crls", "load-crl", "fetch-crl", "flush":
		return runOneShot(command, loaded, loaded.Args, out, errOut)
	}

	d, err := lifecycle.New(loaded, args, errOut)
	if err != nil {
		fmt.Fprintf(errOut, "dirmngr: %v\n", err)
		return cli.ExitError{Code: 2}
	}
	if o.DebugWait > 0 {
		d.Log.Info(fmt.Sprintf("waiting for debugger - my pid is %d ...", os.Getpid()))
		time.Sleep(config.Seconds(o.DebugWait))
	}
	switch command {
	case "server":
		if err := d.ServeStdio(context.Background(), os.Stdin, out); err != nil {
			if errors.Is(err, crlcache.ErrLocked) {
				return relaySession(loaded, os.Stdin, out, errOut)
			}
			d.Log.Error("server failed", "err", err)
			alsoOnStderr(o, errOut, err)
			return cli.ExitError{Code: 2}
		}
		return nil
	case "supervised":
		ln, path, err := lifecycle.Supervised()
		if err != nil {
			d.Log.Error(err.Error())
			return cli.ExitError{Code: 2}
		}
		d.Notify = func(state string) { daemon.SdNotify(false, state) }
		return serveOrFail(d, o, errOut, ln, path, nil)
	case "daemon":
		return runDaemon(d, loaded, args, out, errOut)
	}
	return fmt.Errorf("unhandled command --%s", command)
}

// infoCommand runs the commands that only print something (--help,
// --version, --dump-options, --gpgconf-list, …); done is false for the
// others.
func infoCommand(command string, o *config.Options, out io.Writer) (done bool, err error) {
	switch command {
	case "help":
		writeHelp(out, o)
		return true, nil
	case "version":
		fmt.Fprintf(out, "dirmngr %s\nCompatible with GnuPG's dirmngr %s (Assuan protocol, options, cache semantics).\n", cli.ProgramVersion, server.Version)
		fmt.Fprintln(out, "This is free software: you are free to change and redistribute it.\nThere is NO WARRANTY, to the extent permitted by law.")
		return true, nil
	case "warranty":
		fmt.Fprintln(out, "This program is distributed in the hope that it will be useful, but WITHOUT\nANY WARRANTY; without even the implied warranty of MERCHANTABILITY or FITNESS\nFOR A PARTICULAR PURPOSE.")
		return true, nil
	case "dump-options":
		for _, d := range o.Defs() {
			fmt.Fprintf(out, "--%s\n", d.Name)
		}
		return true, nil
	case "dump-option-table":
		for _, d := range o.Defs() {
			help := d.Help
			if help == "" {
				help = "@"
			} else if d.ArgName != "" {
				help = "|" + d.ArgName + "|" + help
			}
			fmt.Fprintf(out, "%s:%s:%s:\n", d.Name, d.Group, help)
		}
		return true, nil
	case "gpgconf-list":
		fmt.Fprintf(out, "debug-level:16:\"none\nldaptimeout:16:%d\nmax-replies:16:%d\nresolver-timeout:16:0\n", 15, 10)
		return true, nil
	case "gpgconf-versions", "shutdown":
		return true, nil // --shutdown is documented to have no effect
	}
	return false, nil
}

// alsoOnStderr repeats a start-up failure on stderr when the log goes to
// a file, so that the person starting dirmngr sees why it did not start
// (a busy CRL cache above all), not only the log file.
func alsoOnStderr(o *config.Options, errOut io.Writer, err error) {
	if o.LogFile == "" {
		return
	}
	if errors.Is(err, crlcache.ErrLocked) {
		fmt.Fprintf(errOut, "dirmngr: the CRL cache is in use by another process (a running dirmngr or one-shot command): %v\n", err)
		return
	}
	fmt.Fprintf(errOut, "dirmngr: %v\n", err)
}

// gpgconfTest reports the bad lines of the configuration file on stderr
// in GnuPG's words and, as GnuPG's dirmngr, exits 0 (gpgconf reads the
// lines).
func gpgconfTest(args []string, errOut io.Writer) error {
	problems, err := config.ConfigProblems(args)
	if err != nil {
		var oe *config.OptionError
		if errors.As(err, &oe) {
			fmt.Fprintln(errOut, oe.Msg)
			return cli.ExitError{Code: 2}
		}
		fmt.Fprintf(errOut, "dirmngr: %v\n", err)
		return cli.ExitError{Code: 2}
	}
	for _, p := range problems {
		fmt.Fprintln(errOut, p)
	}
	return nil
}

func runDaemon(d *lifecycle.Daemon, loaded *config.Loaded, args []string, out, errOut io.Writer) error {
	o := loaded.Opts
	ln, ready, err := lifecycle.Inherited()
	if err != nil {
		d.Log.Error(err.Error())
		return cli.ExitError{Code: 2}
	}
	path, perr := lifecycle.DefaultSocketPath(loaded, true)
	if perr != nil {
		d.Log.Error("socket directory", "err", perr)
		if ready != nil {
			ready(perr)
		}
		return cli.ExitError{Code: 2}
	}
	if ln != nil { // we are the detached child
		return serveOrFail(d, o, errOut, ln, path, ready)
	}
	uln, err := lifecycle.Listen(path, o.ListenBacklog)
	if err != nil {
		d.Log.Error(err.Error())
		if errors.Is(err, lifecycle.ErrSocketInUse) {
			d.Log.Error("a dirmngr is already running - not starting a new one")
		}
		return cli.ExitError{Code: 2}
	}
	if loaded.Dirs.System {
		// The system-wide daemon serves every eligible user; control
		// commands stay limited to root and the daemon's user.
		if err := os.Chmod(path, 0o666); err != nil {
			d.Log.Error("socket permissions", "err", err)
		}
	}
	if o.NoDetach {
		return serveOrFail(d, o, errOut, uln, path, nil)
	}
	pid, err := lifecycle.Detach(uln, args, config.Seconds(o.ReadyTimeout))
	uln.Close()
	if err != nil {
		d.Log.Error(err.Error())
		alsoOnStderr(o, errOut, err)
		return cli.ExitError{Code: 2}
	}
	csh := o.Csh || (!o.Sh && strings.HasSuffix(os.Getenv("SHELL"), "csh"))
	fmt.Fprintln(out, lifecycle.InfoLine(path, pid, csh))
	return nil
}

// serveOrFail reports readiness to a detaching parent, then serves.
func serveOrFail(d *lifecycle.Daemon, o *config.Options, errOut io.Writer, ln net.Listener, path string, ready func(error)) error {
	if err := d.Prepare(path); err != nil {
		d.Log.Error(err.Error())
		if ready == nil {
			alsoOnStderr(o, errOut, err)
		}
		if ready != nil {
			ready(err)
		}
		return cli.ExitError{Code: 2}
	}
	if ready != nil {
		ready(nil)
	}
	if err := d.Serve(ln, path); err != nil {
		d.Log.Error("serving failed", "err", err)
		return cli.ExitError{Code: 2}
	}
	return nil
}
