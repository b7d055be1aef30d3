package fetchcrl

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
)

// verified is a CRL that passed every check, ready to be written.
type verified struct {
	src  decoded
	info *crl.Info
	ca   *x509.Certificate // the CA certificate that verified it
	got  fetched
}

// decoded is a download recognised as PEM or DER and parsed once; the
// CA lookup (@HASH@), the checks and the writers all use this one parse.
// Its bytes stay in spool files (see spool.go).
type decoded struct {
	raw      *body
	pem      *pemSpan // fetch-crl's PEM match in raw; nil: a DER download
	sha1     [sha1.Size]byte
	info     *crl.Info
	problems []string // why it cannot be used, fetch-crl's words
	unknown  bool     // neither PEM nor DER
}

// decode recognises PEM or DER and parses the CRL, as fetch-crl does: the
// first PEM match (see pemscan.go) wins, else a download starting with a
// SEQUENCE is DER. The OpenSSL-format content is the match itself (no
// final newline) or, for DER, 64-column PEM ending in a newline.
func (t *taRun) decode(raw *body) decoded {
	d := decoded{raw: raw}
	span, ok, err := findPEM(raw.reader())
	var first [1]byte
	switch {
	case err != nil:
		d.problems = []string{err.Error()}
		return d
	case ok:
		d.pem = &span
	case raw.size > 0 && func() bool { _, err := raw.f.ReadAt(first[:], 0); return err == nil }() && first[0] == 0x30:
	default:
		d.unknown = true
		return d
	}
	h := sha1.New()
	der := d.der()
	info, err := crl.Parse(io.TeeReader(der, h), crl.Limits{}, nil)
	if d.pem != nil && err != nil {
		// fetch-crl decodes the whole block before parsing it.
		if _, derr := io.Copy(io.Discard, der); errors.Is(err, errPEMDecode) || errors.Is(derr, errPEMDecode) {
			d.problems = []string{errPEMDecode.Error()}
			return d
		}
	}
	if err != nil {
		d.problems = []string{fmt.Sprintf("CRL cannot be parsed: %v", err), "downloaded CRL lastUpdate could not be derived"}
		return d
	}
	h.Sum(d.sha1[:0])
	d.info = info
	return d
}

// der reads the DER: the download itself, or decoded from its PEM match.
func (d *decoded) der() io.Reader {
	if d.pem == nil {
		return d.raw.reader()
	}
	return derFromPEM(pemText(d.raw, *d.pem))
}

// pemText reads the PEM match as fetch-crl has it (CRLF as LF).
func pemText(raw *body, span pemSpan) io.Reader {
	return newCRLFReader(io.NewSectionReader(raw.f, span.off, span.n))
}

// writeDER copies the DER to w.
func (v *verified) writeDER(w io.Writer) error {
	_, err := io.Copy(w, v.src.der())
	return err
}

// writeOpenSSL copies the OpenSSL-format content (the PEM as fetch-crl
// has it) to w.
func (v *verified) writeOpenSSL(w io.Writer) error {
	if v.src.pem == nil {
		return writePEM(w, v.src.der())
	}
	_, err := io.Copy(w, pemText(v.src.raw, *v.src.pem))
	return err
}

// writePEMFile copies the content of the PEM-format file: the OpenSSL
// content ending in a newline.
func (v *verified) writePEMFile(w io.Writer) error {
	if err := v.writeOpenSSL(w); err != nil {
		return err
	}
	if v.src.pem == nil {
		return nil // already ends in a newline
	}
	_, err := w.Write([]byte{'\n'})
	return err
}

// issuerHash is the subject hash of the CRL's issuer ("" when unknown),
// for @HASH@ in catemplate.
func (d decoded) issuerHash() string {
	if d.info == nil {
		return ""
	}
	h, err := certid.SubjectHash(d.info.RawIssuer)
	if err != nil {
		return ""
	}
	return h
}

// verify checks the signature against the CA files and the time and
// rollback rules (crl.Policy, shared with dirmngr). On failure it logs
// what fetch-crl logs and returns nil: the anchor is abandoned.
func (t *taRun) verify(i int, d decoded) *verified {
	if d.unknown {
		t.log.Warn("CRL data for %s/%d not recognised", t.a.Name, i)
		t.log.Err("verify called on empty data blob")
		return nil
	}
	t.log.Verbose(4, "Verifying CRL %d for %s", i, t.a.Alias)
	problems := d.problems
	var ca *x509.Certificate
	if d.info != nil {
		ca = t.signer(i, d.info)
		if ca == nil {
			problems = append(problems, "CRL signature failed")
		}
		problems = append(problems, t.timeProblems(i, d.info)...)
	}
	if len(problems) > 0 {
		t.log.RetrErr("CRL verification failed for %s/%d (%s)", t.a.Name, i, t.a.Alias)
		for _, p := range problems {
			t.log.Verbose(0, "%s/%d: %s", t.a.Name, i, p)
		}
		return nil
	}
	return &verified{src: d, info: d.info, ca: ca}
}

// signer returns the first CA certificate that issued and signed the CRL.
func (t *taRun) signer(i int, info *crl.Info) *x509.Certificate {
	for _, c := range t.cas {
		if c.cert != nil && bytes.Equal(c.cert.RawSubject, info.RawIssuer) && info.Verify(c.cert.PublicKey) == nil {
			t.log.Verbose(4, "Verified CRL %s/%d against %s", t.a.Alias, i, c.path)
			return c.cert
		}
	}
	return nil
}

// timeProblems applies crl.DefaultPolicy: issued (within the clock skew),
// not expired, and not older than the installed CRL (by thisUpdate: the
// state files, shared with Perl fetch-crl, carry no CRL number).
func (t *taRun) timeProblems(i int, info *crl.Info) []string {
	var problems []string
	now := t.r.Now()
	pol := crl.DefaultPolicy
	switch {
	case info.NextUpdate.IsZero():
		problems = append(problems, "CRL nextUpdate determination failed")
	case pol.Expired(info.NextUpdate, now):
		problems = append(problems, "CRL has nextUpdate time in the past")
	}
	if pol.Future(info.ThisUpdate, now) {
		problems = append(problems, "CRL has lastUpdate time in the future")
	}
	st := t.states[i]
	old := st.int64("lastupdate")
	if old <= 0 {
		return problems
	}
	installed := crl.Version{ThisUpdate: time.Unix(old, 0)}
	if !crl.VersionOf(info).Older(installed) {
		return problems
	}
	if pol.Future(installed.ThisUpdate, now) {
		t.log.Warn("%s/%d: replaced with downloaded CRL since current one has lastUpdate in the future", t.a.Name, i)
	} else if st.int64("mtime") <= now.Unix() {
		problems = append(problems, "downloaded CRL lastUpdate predates installed CRL,", "and current version has sane timestamp")
	}
	return problems
}

// clampFreshness applies expirestolerance and maxcachetime to the cache
// freshness of a download.
func (t *taRun) clampFreshness(v *verified) {
	expTol, maxCache := t.s.ExpiresTolerance, t.s.MaxCacheTime
	next := v.info.NextUpdate.Unix()
	now := t.r.Now().Unix()
	g := &v.got
	if g.freshUntil > next+expTol {
		t.log.Verbose(1, "Cache control headers for CA %s at URL %s have apparent freshness %.1fhrs beyond CRL expiration nextUpdate. Reset freshness from %s to %d second before nextUpdate at %s.",
			t.a.Alias, g.source, float64(g.freshUntil-next)/3600, perlTime(g.freshUntil), expTol, perlTime(next-expTol))
		g.freshUntil = next - expTol
	}
	if g.freshUntil > now+maxCache {
		t.log.Verbose(1, "Cache state freshness expiry for CA %s reset to at most %.1fhrs beyond current time (%s)", t.a.Alias, float64(maxCache)/3600, perlTime(now+maxCache))
		g.freshUntil = now + maxCache
	}
}

func perlTime(sec int64) string {
	return time.Unix(sec, 0).UTC().Format("Mon Jan _2 15:04:05 2006") + " UTC"
}

func parseCert(b []byte) (*x509.Certificate, error) { return certstore.ParseCert(b) }
