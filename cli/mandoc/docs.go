// Package mandoc renders the man pages and dirmngr.conf.example from the
// programs' option tables and cobra trees, so documentation cannot drift
// from --help.
package mandoc

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/clientcmd"
	"github.com/dirmngr/dirmngr/config"
)

// roffEscape escapes text for roff.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// PageDate is the date the generated pages carry (fixed, so that they are
// reproducible).
const PageDate = "2026-11-25"

// Names are the programs' names a man page uses: the source tree's
// (dirmngr, dirmngr-client, fetch-crl) or the Debian package's, which end
// in -go so that they install beside GnuPG's and Debian fetch-crl's.
type Names struct{ Dirmngr, Client, FetchCRL string }

// SourceNames are the names `make build` gives the programs.
var SourceNames = Names{"dirmngr", "dirmngr-client", "fetch-crl"}

// InstalledNames are the names the .deb installs the programs under.
var InstalledNames = Names{"dirmngr-go", "dirmngr-client-go", "fetch-crl-go"}

// DirmngrManPage renders dirmngr(8) from the option table that also
// drives --help and the parser, plus hand-written sections.
func DirmngrManPage(date string) []byte { return DirmngrManPageFor(date, SourceNames) }

// DirmngrManPageFor renders dirmngr(8) under the program names n.
func DirmngrManPageFor(date string, n Names) []byte {
	o := config.Defaults()
	var b bytes.Buffer
	name := roffEscape(n.Dirmngr)
	fmt.Fprintf(&b, ".TH %s 8 %q \"dirmngr %s (GnuPG %s compatible)\" \"System Administration\"\n", strings.ToUpper(name), date, cli.ProgramVersion, "2.2.40")
	b.WriteString(".SH NAME\n" + name + " \\- CRL and OCSP daemon for gpgsm (GnuPG dirmngr compatible)\n")
	b.WriteString(".SH SYNOPSIS\n.B " + name + "\n[\\fIoptions\\fR] [\\fIcommand\\fR [\\fIargs\\fR]]\n")
	b.WriteString(".SH DESCRIPTION\n" + roffEscape(strings.ReplaceAll(dirmngrDescription, "/path/to/this/dirmngr", programPath(n))) + "\n")
	for _, g := range config.HelpGroups(o.Defs()) {
		fmt.Fprintf(&b, ".SH %s\n", strings.ToUpper(roffEscape(g.Name)))
		for _, d := range g.Defs {
			writeManOption(&b, d)
		}
	}
	b.WriteString(hiddenSection(&o))
	b.WriteString(dirmngrModes)
	tail := strings.NewReplacer("@DIRMNGR@", name, "@CLIENT@", roffEscape(n.Client), "@FETCHCRL@", roffEscape(n.FetchCRL)).Replace(dirmngrManTail)
	b.WriteString(tail)
	return b.Bytes()
}

// programPath is where the daemon is for gpgsm.conf's dirmngr-program.
func programPath(n Names) string {
	if n == SourceNames {
		return "/path/to/bin/dirmngr"
	}
	return "/usr/bin/" + n.Dirmngr
}

// hiddenSection documents the options --help does not show (as GnuPG's
// --help does not), from HiddenDocs.
func hiddenSection(o *config.Options) string {
	var b strings.Builder
	b.WriteString(".SH FURTHER OPTIONS\nNot listed by \\fB\\-\\-help\\fR, as in GnuPG.\n")
	for _, d := range o.Defs() {
		doc, ok := HiddenDocs[d.Name]
		if d.Help != "" || d.Command || !ok {
			continue
		}
		b.WriteString(".TP\n\\fB\\-\\-" + roffEscape(d.Name) + "\\fR")
		if d.ArgName != "" {
			b.WriteString(" \\fI" + roffEscape(d.ArgName) + "\\fR")
		}
		b.WriteString("\n" + roffEscape(doc))
		if v := d.Value(); v != "" && !d.IsFlag() {
			b.WriteString(" (default: " + roffEscape(v) + ")")
		}
		b.WriteString("\n")
	}
	return b.String()
}

const dirmngrDescription = `dirmngr manages and downloads certificate revocation lists (CRLs) for X.509 certificates, answers OCSP checks and looks up certificates, for gpgsm and dirmngr-client. It speaks GnuPG's Assuan protocol on a Unix socket (--daemon, --supervised) or on stdin/stdout (--server, the default), with the same commands, inquiries, status lines and error numbers as GnuPG 2.2.40's dirmngr, so gpgsm uses it unchanged: put "dirmngr-program /path/to/this/dirmngr" in gpgsm.conf. Options are read from <homedir>/dirmngr.conf (one "option [value]" per line, # comments), then from the command line.`

const dirmngrModes = `.SH HOMEDIR AND SYSTEM MODE
Every command, \fB\-\-daemon\fR and \fB\-\-supervised\fR included, uses the GnuPG home
directory as GnuPG 2.2's dirmngr does: \fB\-\-homedir\fR, else $GNUPGHOME, else ~/.gnupg.
This is how gpgsm starts it and how the per\-user systemd units run it.
.PP
With \fB\-\-system\fR (which the packaged system units pass) it is the system\-wide
daemon instead: configuration, trusted\-certs/, extra\-certs/ and ldapservers.conf in
/etc/dirmngr, data in /var/lib/dirmngr, the CRL cache in /var/cache/dirmngr/crls.d and the
socket /run/dirmngr/socket (mode 0666: every local user may query it; the control commands
stay limited to root and the daemon's user). \fB\-\-system\fR and \fB\-\-homedir\fR exclude
each other; $GNUPGHOME is ignored in system mode. The one\-shot commands take
\fB\-\-system\fR as well, e.g. \fBdirmngr \-\-system \-\-list\-crls\fR.
`

const dirmngrManTail = `.SH FILES
.TP
.I <homedir>/dirmngr.conf
Configuration (homedir: \fB\-\-homedir\fR, $GNUPGHOME or ~/.gnupg; /etc/dirmngr with \fB\-\-system\fR).
.TP
.I <homedir>/crls.d/crls.db
The CRL cache (bbolt). Only one process opens it; the one-shot commands
(\fB\-\-list\-crls\fR, \fB\-\-load\-crl\fR, \fB\-\-fetch\-crl\fR, \fB\-\-flush\fR) go through
the running daemon when it holds the cache.
.TP
.IR /etc/gnupg/trusted\-certs ", " <homedir>/trusted\-certs
Root certificates trusted for CRL signers (DER or PEM, .crt/.der/.pem). A CRL whose
chain ends elsewhere is confirmed with the client (INQUIRE ISTRUSTED) on use.
.TP
.IR /etc/gnupg/extra\-certs ", " <homedir>/extra\-certs
Intermediate and other certificates preloaded into the certificate cache.
.TP
.I S.dirmngr
The socket, at the path \fBgpgconf \-\-list\-dirs dirmngr\-socket\fR prints for the homedir.
.SH EXIT STATUS
As GnuPG's dirmngr: 0 on success; 1 when a CRL given to \fB\-\-load\-crl\fR or
\fB\-\-fetch\-crl\fR could not be loaded; 2 for bad options and when the daemon cannot start.
\fB\-\-gpgconf\-test\fR prints the bad lines of dirmngr.conf ("FILE:LINE: invalid option")
and exits 0, as GnuPG's does.
.SH LOGGING
\fB\-\-log\-file\fR takes a file name, \fBsocket://\fR\fIPATH\fR (a Unix socket; plain
\fBsocket://\fR is S.log in the socket directory) or \fBtcp://\fR\fIHOST\fR:\fIPORT\fR, as
GnuPG's; a log server such as watchgnupg gets the lines while it listens, stderr meanwhile.
With \fB\-v\fR every check's result (serial number, issuer, verdict, revocation reason
and date) and every CRL fetch (URL, bytes, entries, time) is logged.
.SH SIGNALS
.TP
.B SIGHUP
Re\-read the configuration, reload the certificate directories (as RELOADDIRMNGR). A configuration that cannot be read is logged and the previous one stays in effect; RELOADDIRMNGR answers it with Configuration error and the reason.
.TP
.B SIGTERM
Stop accepting connections and exit when the last session ends; the third SIGTERM exits at once.
.TP
.B SIGINT
Exit immediately.
.TP
.BR SIGUSR1 ", " SIGUSR2
Log statistics.
.SH EXAMPLES
.nf
@DIRMNGR@ \-\-daemon                  # start for ~/.gnupg, print DIRMNGR_INFO
gpg\-connect\-agent \-\-dirmngr 'GETINFO version' /bye
@DIRMNGR@ \-\-list\-crls
@DIRMNGR@ \-\-fetch\-crl http://crl.example.org/ca.crl
@DIRMNGR@ \-\-system \-\-list\-crls      # the system\-wide daemon's cache
.fi
.SH SEE ALSO
.BR @CLIENT@ (1),
.BR gpgsm (1),
.BR @FETCHCRL@ (8)
`

// FlagsManPage renders a man page for a cobra command from its flags.
func FlagsManPage(cmd *cobra.Command, section, date, description, tail string) []byte {
	return flagsManPage(cmd, cmd.Name(), section, date, description, tail)
}

func flagsManPage(cmd *cobra.Command, name, section, date, description, tail string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH %s %s %q \"dirmngr %s\" \"User Commands\"\n", strings.ToUpper(roffEscape(name)), section, date, cli.ProgramVersion)
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roffEscape(name), roffEscape(cmd.Short))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n%s\n", roffEscape(name), roffEscape(strings.TrimPrefix(cmd.Use, cmd.Name()+" ")))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", roffEscape(strings.ReplaceAll(description, "\n", " ")))
	b.WriteString(".SH OPTIONS\n")
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		b.WriteString(".TP\n")
		n := `\fB\-\-` + roffEscape(f.Name) + `\fR`
		if f.Shorthand != "" {
			n = `\fB\-` + f.Shorthand + `\fR, ` + n
		}
		if f.Value.Type() != "bool" && f.Value.Type() != "count" {
			n += ` \fI` + strings.ToUpper(f.Value.Type()) + `\fR`
		}
		b.WriteString(n + "\n" + roffEscape(f.Usage) + "\n")
	})
	b.WriteString(tail)
	return b.Bytes()
}

// ClientManPage renders dirmngr-client(1).
func ClientManPage(date string) []byte { return ClientManPageFor(date, SourceNames) }

// ClientManPageFor renders dirmngr-client(1) under the program names n.
func ClientManPageFor(date string, n Names) []byte {
	cmd := clientcmd.NewCommand()
	return flagsManPage(cmd, n.Client, "1", date, cmd.Long, `.SH EXIT STATUS
As GnuPG's dirmngr\-client: 0 the certificate is valid, the operation succeeded, or
\fB\-\-lookup\fR found nothing; 1 the certificate is revoked or failed validation, or a
CRL given to \fB\-\-load\-crl\fR could not be loaded; 2 any other error (no dirmngr, bad
input, a failed check).
.SH INQUIRIES
dirmngr\-client answers TARGETCERT and SENDCERT with the certificates of the invocation,
and ISTRUSTED by asking gpg\-agent (S.gpg\-agent next to the dirmngr socket) whether the
root is in its trust list.
.SH SEE ALSO
.BR `+roffEscape(n.Dirmngr)+` (8)
`)
}

// FetchCRLManPageFor renames the hand-written fetch-crl(8) src for the
// program names n: its title, NAME and SYNOPSIS lines and the reference to
// dirmngr(8).
func FetchCRLManPageFor(src []byte, n Names) []byte {
	name := roffEscape(n.FetchCRL)
	var out []string
	for _, l := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(l, ".TH FETCH-CRL "):
			l = ".TH " + strings.ToUpper(name) + strings.TrimPrefix(l, ".TH FETCH-CRL")
		case strings.HasPrefix(l, "fetch-crl \\- "):
			l = name + strings.TrimPrefix(l, "fetch-crl")
		case l == ".B fetch-crl":
			l = ".B " + name
		case l == ".BR dirmngr (8),":
			l = ".BR " + roffEscape(n.Dirmngr) + " (8),"
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}

// ConfExample renders dirmngr.conf.example: every option that may appear
// in dirmngr.conf, grouped as in --help, with its default and help text,
// commented out.
func ConfExample() []byte {
	o := config.Defaults()
	var b bytes.Buffer
	b.WriteString(`# dirmngr.conf.example — every option of dirmngr that dirmngr.conf accepts.
#
# Copy to <homedir>/dirmngr.conf (homedir: --homedir, $GNUPGHOME or ~/.gnupg).
# Syntax: one "option [value]" per line, without the leading "--"; lines
# starting with "#" are comments. Unknown options are warned about and skipped.
# Options marked (SIGHUP) take effect on "gpgconf --reload dirmngr" as well.
# Every line below is commented out and shows the default.
`)
	group := ""
	for _, d := range o.Defs() {
		if d.Command || d.NoConf {
			continue
		}
		if d.Group != group {
			group = d.Group
			fmt.Fprintf(&b, "\n## %s\n", group)
		}
		help := d.Help
		if help == "" {
			help = HiddenDocs[d.Name]
		}
		if d.Reread {
			help += " (SIGHUP)"
		}
		fmt.Fprintf(&b, "\n# %s\n", help)
		switch v := d.Value(); {
		case d.IsFlag():
			fmt.Fprintf(&b, "#%s\n", d.Name)
		case v == "":
			arg := d.ArgName
			if arg == "" {
				arg = "VALUE"
			}
			fmt.Fprintf(&b, "#%s %s\n", d.Name, arg)
		default:
			fmt.Fprintf(&b, "#%s %s\n", d.Name, v)
		}
	}
	return b.Bytes()
}

// writeManOption writes one option's .TP entry.
func writeManOption(b *bytes.Buffer, d config.Def) {
	b.WriteString(".TP\n")
	name := `\fB\-\-` + roffEscape(d.Name) + `\fR`
	if d.Short != "" {
		name = `\fB\-` + d.Short + `\fR, ` + name
	}
	if d.ArgName != "" {
		name += ` \fI` + roffEscape(d.ArgName) + `\fR`
	}
	b.WriteString(name + "\n")
	help := roffEscape(d.Help)
	if v := d.Value(); v != "" && !d.IsFlag() && !d.Command {
		help += " (default: " + roffEscape(v) + ")"
	}
	if d.Reread {
		help += ". Re\\-read on SIGHUP."
	}
	b.WriteString(help + "\n")
}
