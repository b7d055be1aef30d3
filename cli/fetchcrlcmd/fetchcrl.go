// Package fetchcrlcmd is the fetch-crl program: fetch-crl 3's flags (unique
// long-option prefixes expanded), help text and exit codes, over the fetchcrl
// engine. cmd/fetch-crl only calls NewCommand.
package fetchcrlcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/fetchcrl"
)

// FetchCRLVersion is the fetch-crl release whose behaviour is implemented.
const FetchCRLVersion = "3.0.23"

const fetchCRLUsage = "Usage: fetch-crl [-c|--config configfile] [-l|--infodir path] [--cadir path] [-s|--statedir path] [-o|--output path] [--format @formats] [-T|--httptimeout seconds] [-p|--parallelism n] [--nosymlinks] [-a|--agingtolerance hours] [-r|--randomwait seconds] [-v|--verbose] [-h|--help] [-q|--quiet] [-d|--debug level]"

// Help is fetch-crl's --help text.
const Help = fetchCRLUsage + `

   -h --help             this help text
   -c --config file      configuration file location (/etc/fetch-crl.conf)
   -l --infodir path     directory with the trust anchor .info/.crl_url files
      --cadir path       directory with the CA certificates (default: infodir)
   -s --statedir path    directory for state and cache files (/var/cache/fetch-crl)
      --cfgdir path      directory with additional configuration files (/etc/fetch-crl.d)
   -o --output path      directory for the CRLs (default: infodir)
      --format fmt       output format: openssl, pem, der or nss (repeatable)
      --define key=val   set configuration directive key (or section:key) to val
   -T --httptimeout sec  timeout for each download (120)
   -p --parallelism n    process n trust anchors at once (0: sequential)
   -a --agingtolerance h hours a download may fail before it is an error (24)
   -r --randomwait sec   wait a random time up to sec before starting
      --nosymlinks       ignore metadata files that are symbolic links
      --inet6glue        accepted for compatibility (IPv6 works natively)
      --dirmngr socket   also load every new CRL into the dirmngr on socket
      --clean            remove <hash>.rN files of no known CA, then exit
   -n --dryrun           with --clean: only list them
   -v --verbose          more verbose (repeatable)
   -q --quiet            quiet (-qq overrides noquiet)
   -d --debug            accepted for compatibility
   -V --version          print the version and exit

Exit status: 0 success; 1 errors; with rcmode=differentiated 2 when only
retrievals or verifications failed.`

type fetchCRLFlags struct {
	f                                         fetchcrl.Flags
	infodir, cadir, statedir, output          string
	httptimeout, parallelism, aging, randomwt int
	help, version, clean, dryRun              bool
}

// NewCommand returns the fetch-crl command.
func NewCommand() *cobra.Command {
	var o fetchCRLFlags
	cmd := &cobra.Command{
		Use:                   "fetch-crl [options] [trust-anchor...]",
		Short:                 "retrieve certificate revocation lists for IGTF trust anchors",
		SilenceUsage:          true,
		SilenceErrors:         true,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFetchCRL(cmd, &o, args)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVarP(&o.f.Config, "config", "c", "", "configuration file")
	fs.StringVarP(&o.infodir, "infodir", "l", "", "trust anchor metadata directory")
	fs.StringVar(&o.cadir, "cadir", "", "CA certificate directory")
	fs.StringVarP(&o.statedir, "statedir", "s", "", "state directory")
	fs.StringVar(&o.f.Cfgdir, "cfgdir", "", "configuration directory")
	fs.StringVarP(&o.output, "output", "o", "", "output directory")
	fs.StringArrayVar(&o.f.Formats, "format", nil, "output format")
	fs.StringArrayVar(&o.f.Defines, "define", nil, "key=value")
	fs.IntVarP(&o.httptimeout, "httptimeout", "T", 0, "download timeout")
	fs.IntVarP(&o.parallelism, "parallelism", "p", 0, "parallel workers")
	fs.IntVarP(&o.aging, "agingtolerance", "a", 0, "aging tolerance in hours")
	fs.IntVarP(&o.randomwt, "randomwait", "r", 0, "random wait")
	fs.BoolVar(&o.f.NoSymlinks, "nosymlinks", false, "ignore symlinked metadata")
	fs.BoolVar(&o.f.Inet6Glue, "inet6glue", false, "compatibility")
	fs.StringVar(&o.f.Dirmngr, "dirmngr", "", "dirmngr socket")
	fs.CountVarP(&o.f.Verbose, "verbose", "v", "verbose")
	fs.CountVarP(&o.f.Quiet, "quiet", "q", "quiet")
	fs.CountVarP(&o.f.Debug, "debug", "d", "debug")
	fs.BoolVar(&o.clean, "clean", false, "remove orphaned CRL files")
	fs.BoolVarP(&o.dryRun, "dryrun", "n", false, "with --clean: only list")
	fs.BoolVarP(&o.help, "help", "h", false, "help")
	fs.BoolVarP(&o.version, "version", "V", false, "version")
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) { fmt.Fprintln(c.OutOrStdout(), Help) })
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := err.Error()
		var ive *pflag.InvalidValueError
		if errors.As(err, &ive) {
			// Getopt::Long's words, with the option as it was typed.
			name := ive.GetFlag().Name
			if len(ive.GetFlag().Annotations[typedShort]) > 0 {
				name = ive.GetFlag().Shorthand
			}
			msg = fmt.Sprintf("Value %q invalid for option %s (number expected)", ive.GetValue(), name)
		} else if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
			msg = "Unknown option: " + name
		} else if name, ok := strings.CutPrefix(msg, "unknown shorthand flag: "); ok {
			msg = "Unknown option: " + strings.Trim(strings.Fields(name)[0], "'")
		}
		fmt.Fprintln(c.ErrOrStderr(), msg)
		fmt.Fprintln(c.OutOrStdout(), Help)
		return cli.ExitError{Code: 1}
	})
	return cmd
}

// typedShort annotates a flag given in its one-letter form, so that an
// error names it as the user typed it (as Getopt::Long does).
const typedShort = "fetch-crl-typed-short"

// ExpandLongPrefixes rewrites unique prefixes of long options to the full
// names (Getopt::Long behaviour, e.g. --out → --output) and marks the
// options given in their one-letter form.
func ExpandLongPrefixes(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			markShort(fs, a)
			out = append(out, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		if fs.Lookup(name) == nil {
			var match []string
			fs.VisitAll(func(f *pflag.Flag) {
				if strings.HasPrefix(f.Name, name) {
					match = append(match, f.Name)
				}
			})
			if len(match) == 1 {
				name = match[0]
			}
		}
		if hasVal {
			out = append(out, "--"+name+"="+val)
		} else {
			out = append(out, "--"+name)
		}
	}
	return out
}

// markShort annotates the one-letter options of a bundle such as -vvT;
// the letters after one that takes a value are that value.
func markShort(fs *pflag.FlagSet, a string) {
	if len(a) < 2 || a[0] != '-' || a[1] == '-' {
		return
	}
	for _, c := range a[1:] {
		f := fs.ShorthandLookup(string(c))
		if f == nil {
			return
		}
		fs.SetAnnotation(f.Name, typedShort, []string{"1"})
		if f.NoOptDefVal == "" {
			return
		}
	}
}

func runFetchCRL(cmd *cobra.Command, o *fetchCRLFlags, args []string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.help {
		fmt.Fprintln(out, Help)
		return nil
	}
	if o.version {
		fmt.Fprintf(out, "fetch-crl version %s\n", FetchCRLVersion)
		return nil
	}
	fs := cmd.Flags()
	f := o.f
	strp := func(name, v string) *string {
		if fs.Changed(name) {
			return &v
		}
		return nil
	}
	intp := func(name string, v int) *int {
		if fs.Changed(name) {
			return &v
		}
		return nil
	}
	f.Infodir, f.Cadir, f.Statedir, f.Output = strp("infodir", o.infodir), strp("cadir", o.cadir), strp("statedir", o.statedir), strp("output", o.output)
	f.HTTPTimeout, f.Parallelism, f.AgingTolerance, f.RandomWait = intp("httptimeout", o.httptimeout), intp("parallelism", o.parallelism), intp("agingtolerance", o.aging), intp("randomwait", o.randomwt)
	f.Anchors = args
	var warnings []string
	cfg, err := fetchcrl.LoadConfig(&f, func(w string) { warnings = append(warnings, w) })
	if err != nil {
		var fe *fetchcrl.FatalError
		if errors.As(err, &fe) {
			fmt.Fprintln(out, fe.Msg)
			return cli.ExitError{Code: fe.Status}
		}
		return err
	}
	verbosity := cfg.Verbosity
	log, err := fetchcrl.NewLog(out, verbosity, cfg.LogMode, cfg.SyslogFacility)
	if err != nil {
		fmt.Fprintln(out, err.Error())
		return cli.ExitError{Code: 9}
	}
	defer log.Close()
	for _, w := range warnings {
		log.Global().Warn("%s", w)
	}
	r := &fetchcrl.Runner{Cfg: cfg, Log: log}
	if cli.IsTerminal(errOut) && verbosity >= 0 && out != io.Writer(errOut) {
		r.Out = errOut
	}
	if o.clean {
		fetchcrl.Clean(cfg, o.dryRun, log.Global())
		if code := log.ExitStatus(cfg.RCMode); code != 0 {
			return cli.ExitError{Code: code}
		}
		return nil
	}
	if code := r.Run(context.Background(), args); code != 0 {
		return cli.ExitError{Code: code}
	}
	return nil
}
