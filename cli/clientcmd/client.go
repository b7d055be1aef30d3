// Package clientcmd is the dirmngr-client program: ping, CRL and OCSP checks
// of certificates, CRL loading, lookups, cache-cert, validate and squid mode,
// all through a running dirmngr. cmd/dirmngr-client only calls NewCommand.
package clientcmd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// clientOpts are dirmngr-client's options.
type clientOpts struct {
	verbose                 int
	quiet                   bool
	ocsp, forceDefault      bool
	ping, cacheCert         bool
	validate, lookup, local bool
	url, loadCRL, squid     bool
	pem, version            bool
	homedir, socket         string
}

// NewCommand returns the dirmngr-client command.
func NewCommand() *cobra.Command {
	var o clientOpts
	cmd := &cobra.Command{
		Use:   "dirmngr-client [options] [certfile|pattern...]",
		Short: "Test an X.509 certificate against a CRL or do an OCSP check",
		Long: "Test an X.509 certificate against a CRL or do an OCSP check through a running\n" +
			"dirmngr. Certificates are read from the named files or from stdin, DER or PEM.\n" +
			"The process returns 0 if the certificate is valid, 1 if it is not valid\n" +
			"(revoked, or failed validation) and 2 for general failures.",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Parsed in RunE GnuPG's way: abbreviations, GnuPG's error words.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.InitDefaultHelpFlag()
			if err := config.ParseArgs(cmd.Flags(), args); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err.Error())
				return cli.ExitError{Code: 2}
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			if o.version {
				fmt.Fprintf(cmd.OutOrStdout(), "dirmngr-client %s\nCompatible with GnuPG's dirmngr-client %s.\n", cli.ProgramVersion, cli.GnuPGVersion)
				fmt.Fprintln(cmd.OutOrStdout(), "This is free software: you are free to change and redistribute it.\nThere is NO WARRANTY, to the extent permitted by law.")
				return nil
			}
			return runClient(cmd.Context(), &o, cmd.Flags().Args(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.CountVarP(&o.verbose, "verbose", "v", "verbose")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "be somewhat more quiet")
	f.BoolVar(&o.ocsp, "ocsp", false, "use OCSP instead of CRLs")
	f.BoolVar(&o.ping, "ping", false, "check whether a dirmngr is running")
	f.BoolVar(&o.cacheCert, "cache-cert", false, "add a certificate to the cache")
	f.BoolVar(&o.validate, "validate", false, "validate a certificate")
	f.BoolVar(&o.lookup, "lookup", false, "lookup a certificate")
	f.BoolVarP(&o.local, "local", "l", false, "lookup only locally stored certificates")
	f.BoolVarP(&o.url, "url", "u", false, "expect an URL for --lookup and --load-crl")
	f.BoolVar(&o.loadCRL, "load-crl", false, "load a CRL into the dirmngr")
	f.BoolVar(&o.squid, "squid-mode", false, "special mode for use by Squid")
	f.BoolVar(&o.pem, "pem", false, "expect certificates in PEM format")
	f.BoolVar(&o.forceDefault, "force-default-responder", false, "force the use of the default OCSP responder")
	f.StringVar(&o.homedir, "homedir", "", "the GnuPG home directory (default $GNUPGHOME or ~/.gnupg)")
	f.StringVar(&o.socket, "socket", "", "connect to this socket instead of the homedir's")
	f.BoolVar(&o.version, "version", false, "print the program version and exit")
	return cmd
}

type clientRun struct {
	o        *clientOpts
	errOut   io.Writer
	progLine bool // a progress line is on the terminal
	c        *assuan.Client
	pool     [][]byte // certificates of this invocation, for SENDCERT
	target   []byte
	agent    string // gpg-agent socket for ISTRUSTED
}

func (r *clientRun) logf(level int, format string, args ...any) {
	if r.o.verbose >= level && !r.o.quiet {
		fmt.Fprintf(r.errOut, "dirmngr-client: "+format+"\n", args...)
	}
}

func (r *clientRun) errorf(format string, args ...any) {
	fmt.Fprintf(r.errOut, "dirmngr-client: "+format+"\n", args...)
}

func runClient(ctx context.Context, o *clientOpts, args []string, in io.Reader, out, errOut io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	home := o.homedir
	if home == "" {
		home = config.StandardHomedir()
	}
	sock := o.socket
	if sock == "" {
		dir, err := config.SocketDir(home, "/run/user", false)
		if err != nil {
			fmt.Fprintf(errOut, "dirmngr-client: %v\n", err)
			return cli.ExitError{Code: 2}
		}
		sock = filepath.Join(dir, "S.dirmngr")
	}
	r := &clientRun{o: o, errOut: errOut, agent: filepath.Join(filepath.Dir(sock), "S.gpg-agent")}
	c, err := assuan.Dial(sock)
	if err != nil {
		// GnuPG's words; the socket and the system's reason with -v.
		r.logf(1, "no dirmngr answers on '%s'", sock)
		r.errorf("can't connect to the dirmngr: No dirmngr")
		return cli.ExitError{Code: 2}
	}
	defer c.Close()
	r.c = c
	switch {
	case o.ping:
		r.logf(0, "a dirmngr daemon is up and running")
		return nil
	case o.loadCRL:
		return r.loadCRLs(ctx, args)
	case o.lookup:
		return r.lookups(ctx, args, out)
	case o.squid:
		return r.squidMode(ctx, in, out)
	}
	certs, err := r.readCerts(args, in)
	if err != nil {
		r.errorf("%v", err)
		return cli.ExitError{Code: 2}
	}
	worst := 0
	for _, der := range certs {
		if code := r.checkOne(ctx, der); code > worst {
			worst = code
		}
	}
	if worst != 0 {
		return cli.ExitError{Code: worst}
	}
	return nil
}

// readCerts reads the certificates named by args, or one from in.
func (r *clientRun) readCerts(args []string, in io.Reader) ([][]byte, error) {
	var raw [][]byte
	if len(args) == 0 {
		data, err := io.ReadAll(io.LimitReader(in, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		raw = append(raw, data)
	}
	for _, a := range args {
		data, err := os.ReadFile(a)
		if err != nil {
			// GnuPG's words, the cause once (not Go's "open X: ...").
			return nil, fmt.Errorf("can't read '%s': %s", a, gpgerr.CodeOf(gpgerr.ErrorFromOS(err)).Error())
		}
		raw = append(raw, data)
	}
	var out [][]byte
	for _, data := range raw {
		der, err := certDER(data)
		if err != nil {
			return nil, err
		}
		out = append(out, der)
	}
	r.pool = append(r.pool, out...)
	return out, nil
}

// certDER accepts DER or PEM and returns DER.
func certDER(data []byte) ([]byte, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		data = blk.Bytes
	}
	if _, err := x509.ParseCertificate(data); err != nil {
		return nil, errors.New("no certificate or invalid encoded")
	}
	return data, nil
}

func (r *clientRun) handlers(data func([]byte) error) *assuan.Handlers {
	return &assuan.Handlers{
		Data:    data,
		Inquire: r.inquire,
		Status: func(kw, args string) error {
			if kw == "PROGRESS" {
				r.progress(args)
			}
			r.logf(2, "status: %s %s", kw, args)
			return nil
		},
	}
}

// inquire answers the daemon's questions: TARGETCERT with the certificate
// being checked, SENDCERT* from the certificates of this invocation, and
// ISTRUSTED by asking gpg-agent's trust list. Unknown ones are empty.
func (r *clientRun) inquire(kw, args string) ([]byte, error) {
	switch kw {
	case "TARGETCERT":
		return r.target, nil
	case "SENDCERT", "SENDCERT_SKI", "SENDISSUERCERT":
		if kw == "SENDCERT" && args == "" {
			return r.target, nil
		}
		return r.findCert(kw, args), nil
	case "ISTRUSTED":
		if r.agentTrusts(args) {
			return []byte("1"), nil
		}
		return []byte{}, nil
	}
	r.logf(1, "unsupported inquiry '%s %s'", kw, args)
	return []byte{}, nil
}

func (r *clientRun) findCert(kw, args string) []byte {
	for _, der := range r.pool {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			continue
		}
		subj, _ := certid.DN(c.RawSubject)
		switch {
		case kw == "SENDCERT_SKI":
			ki, dn, _ := strings.Cut(args, " /")
			if strings.EqualFold(fmt.Sprintf("%X", c.SubjectKeyId), ki) && dn == subj {
				return der
			}
		case kw == "SENDCERT" && strings.HasPrefix(args, "/"):
			if args[1:] == subj {
				return der
			}
		case kw == "SENDCERT" && len(args) == 40:
			if strings.EqualFold(certid.Fingerprint(der), args) {
				return der
			}
		}
	}
	return []byte{}
}

// agentTrusts asks gpg-agent whether fpr is a trusted root.
func (r *clientRun) agentTrusts(fpr string) bool {
	a, err := assuan.Dial(r.agent)
	if err != nil {
		r.logf(1, "no gpg-agent to ask whether %s is trusted", fpr)
		return false
	}
	defer a.Close()
	return a.Transact(context.Background(), "ISTRUSTED "+fpr, &assuan.Handlers{}) == nil
}

func (r *clientRun) response(err error) {
	r.endProgress()
	if err == nil {
		r.logf(1, "response of dirmngr: okay")
	} else {
		r.logf(1, "response of dirmngr: %s", gpgerr.CodeOf(err).Error())
	}
}

// checkOne runs the requested check on one certificate and returns the
// exit code: 0 valid, 1 not valid, 2 error.
func (r *clientRun) checkOne(ctx context.Context, der []byte) int {
	r.target = der
	cmd := "CHECKCRL"
	switch {
	case r.o.cacheCert:
		cmd = "CACHECERT"
	case r.o.validate:
		cmd = "VALIDATE"
	case r.o.ocsp && r.o.forceDefault:
		cmd = "CHECKOCSP --force-default-responder"
	case r.o.ocsp:
		cmd = "CHECKOCSP"
	}
	err := r.c.Transact(ctx, cmd, r.handlers(nil))
	r.response(err)
	code := gpgerr.CodeOf(err)
	switch {
	case r.o.cacheCert:
		// As GnuPG's client: silent when added, "already cached" unless --quiet.
		if err == nil {
			r.logf(1, "certificate added to the cache")
			return 0
		}
		if code == gpgerr.ErrDupValue {
			r.logf(0, "certificate already cached")
			return 0
		}
		r.errorf("error caching certificate: %s", code.Error())
		return 2
	case r.o.validate:
		if err == nil {
			r.logf(0, "certificate is valid")
			return 0
		}
		r.errorf("validation of certificate failed: %s", code.Error())
		return 1
	}
	switch {
	case err == nil:
		r.logf(0, "certificate is valid") // GnuPG prints it unless --quiet
		return 0
	case code == gpgerr.ErrCertRevoked:
		r.errorf("certificate has been revoked")
		return 1
	}
	r.errorf("certificate check failed: %s", code.Error())
	return 2
}

func (r *clientRun) loadCRLs(ctx context.Context, args []string) error {
	if len(args) == 0 {
		r.errorf("--load-crl needs a file name or, with --url, a URL")
		return cli.ExitError{Code: 2}
	}
	failed := false
	for _, a := range args {
		cmd := "LOADCRL "
		if r.o.url {
			cmd += "--url " + assuan.EscapePlus(a)
		} else {
			abs, err := filepath.Abs(a)
			if err != nil {
				abs = a
			}
			cmd += assuan.EscapePlus(abs)
		}
		err := r.c.Transact(ctx, cmd, r.handlers(nil))
		r.response(err)
		if err != nil {
			r.errorf("loading CRL '%s' failed: %s", a, gpgerr.CodeOf(err).Error())
			failed = true
		}
	}
	if failed {
		return cli.ExitError{Code: 1} // as GnuPG's dirmngr-client
	}
	return nil
}

func (r *clientRun) lookups(ctx context.Context, args []string, out io.Writer) error {
	failed := false
	for _, a := range args {
		r.logf(1, "looking up '%s'", a)
		cmd := "LOOKUP "
		if r.o.url {
			cmd += "--url "
		} else if r.o.local {
			cmd += "--cache-only "
		}
		var buf bytes.Buffer
		h := r.handlers(func(p []byte) error { buf.Write(p); return nil })
		h.End = func() error {
			writeBase64(out, buf.Bytes(), r.o.pem)
			buf.Reset()
			return nil
		}
		err := r.c.Transact(ctx, cmd+assuan.EscapePlus(a), h)
		r.response(err)
		if buf.Len() > 0 {
			writeBase64(out, buf.Bytes(), r.o.pem)
		}
		// Nothing found is not a failure: GnuPG's client exits 0 then.
		if err != nil && !notFound(gpgerr.CodeOf(err)) {
			r.errorf("lookup of '%s' failed: %s", a, gpgerr.CodeOf(err).Error())
			failed = true
		}
	}
	if failed {
		return cli.ExitError{Code: 2}
	}
	return nil
}

// notFound reports whether a LOOKUP error only says that nothing matched.
func notFound(c gpgerr.Code) bool {
	return c == gpgerr.ErrNotFound || c == gpgerr.ErrNoData || c == gpgerr.ErrEOF
}

func writeBase64(w io.Writer, der []byte, asPEM bool) {
	if asPEM {
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		return
	}
	s := base64.StdEncoding.EncodeToString(der)
	for len(s) > 64 {
		fmt.Fprintln(w, s[:64])
		s = s[64:]
	}
	fmt.Fprintln(w, s)
}

// squidMode reads one certificate per line (PEM with %0A for line breaks,
// or escaped DER) and answers each with a line "OK" or "ERROR". Every
// inquiry is answered in sequence, so replies never desynchronise.
func (r *clientRun) squidMode(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		line := assuan.UnescapeData(sc.Bytes())
		res := "ERROR"
		if der, err := certDER(line); err != nil {
			r.logf(1, "invalid certificate line: %v", err)
		} else {
			r.pool = append(r.pool[:0], der)
			r.target = der
			cmd := "CHECKCRL"
			if r.o.ocsp {
				cmd = "CHECKOCSP"
			}
			err := r.c.Transact(ctx, cmd, r.handlers(nil))
			r.response(err)
			if err == nil {
				res = "OK"
			}
		}
		fmt.Fprintln(w, res)
		w.Flush()
	}
	if err := sc.Err(); err != nil {
		r.errorf("reading input: %v", err)
		return cli.ExitError{Code: 2}
	}
	return nil
}
