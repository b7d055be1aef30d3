package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// OptionError is a command-line option problem, worded as GnuPG's argparse
// words it (`invalid option "--bogus"`, `option "--ver" is ambiguous`);
// programs print it as it is, without their name in front, as GnuPG does.
type OptionError struct{ Msg string }

// Error returns the GnuPG-style message.
func (e *OptionError) Error() string { return e.Msg }

// ExpandAbbrev rewrites unambiguous prefixes of long options in args to the
// full names, as GnuPG's argparse accepts them (--vers for --version,
// --verb for --verbose, --list-crl for --list-crls). An exact name always
// wins; a prefix of several names is an OptionError; an unknown name is
// left for the parser to report. Option values and everything after "--"
// are left alone.
func ExpandAbbrev(fs *pflag.FlagSet, args []string) ([]string, error) {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "--") || len(a) == 2 {
			out = append(out, a)
			continue
		}
		name, value, hasValue := strings.Cut(a[2:], "=")
		if fs.Lookup(name) == nil {
			var matches []string
			for _, n := range names {
				if strings.HasPrefix(n, name) {
					matches = append(matches, n)
				}
			}
			switch len(matches) {
			case 0:
				out = append(out, a)
				continue
			case 1:
				name = matches[0]
			default:
				return nil, &OptionError{Msg: fmt.Sprintf("option \"--%s\" is ambiguous", name)}
			}
		}
		if hasValue {
			out = append(out, "--"+name+"="+value)
			continue
		}
		out = append(out, "--"+name)
		if f := fs.Lookup(name); takesValue(f) && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out, nil
}

func takesValue(f *pflag.Flag) bool {
	t := f.Value.Type()
	return t != "bool" && t != "count" && f.NoOptDefVal == ""
}

// gnupgParseError rewords pflag's parse errors as GnuPG's argparse does.
func gnupgParseError(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "unknown flag: "):
		return &OptionError{Msg: fmt.Sprintf("invalid option \"%s\"", strings.TrimPrefix(msg, "unknown flag: "))}
	case strings.HasPrefix(msg, "unknown shorthand flag: "):
		// "unknown shorthand flag: 'x' in -x"
		if i := strings.LastIndex(msg, " in "); i >= 0 {
			return &OptionError{Msg: fmt.Sprintf("invalid option \"%s\"", msg[i+4:])}
		}
	case strings.HasPrefix(msg, "flag needs an argument: "):
		opt := strings.TrimPrefix(msg, "flag needs an argument: ")
		if i := strings.LastIndex(opt, " in "); i >= 0 {
			opt = opt[i+4:]
		}
		return &OptionError{Msg: fmt.Sprintf("missing argument for option \"%s\"", strings.Trim(opt, "'"))}
	}
	return err
}

// ParseArgs expands GnuPG-style abbreviations in args and parses them into
// fs, with GnuPG's words for the errors.
func ParseArgs(fs *pflag.FlagSet, args []string) error {
	expanded, err := ExpandAbbrev(fs, args)
	if err != nil {
		return err
	}
	if err := fs.Parse(expanded); err != nil {
		return gnupgParseError(err)
	}
	return nil
}
