package fetchcrl

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"time"

	"github.com/dirmngr/dirmngr/certid"
	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
)

// verified is a CRL that passed every check, ready to be written.
type verified struct {
	pem  []byte // content of the OpenSSL-format file
	der  []byte
	info *crl.Info
	ca   *x509.Certificate // the CA certificate that verified it
	got  fetched
}

// decoded is a download recognised as PEM or DER and parsed once; the
// CA lookup (@HASH@), the checks and the writers all use this one parse.
type decoded struct {
	pem, der []byte
	info     *crl.Info
	problems []string // why it cannot be used, fetch-crl's words
	unknown  bool     // neither PEM nor DER
}

var pemRE = regexp.MustCompile(`(?sm)(^-----BEGIN X509 CRL-----\n[^-]+\n-----END X509 CRL-----$)`)

// decode recognises PEM or DER and parses the CRL. The PEM content follows
// fetch-crl's bytes: a PEM download is the first block without its final
// newline, a DER download becomes 64-column PEM ending in a newline.
func decode(data []byte) decoded {
	var d decoded
	norm := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")) // fetch-crl 3 rejected CRLF PEM
	if m := pemRE.FindSubmatch(norm); m != nil {
		d.pem = m[1]
		blk, _ := pem.Decode(append(append([]byte(nil), d.pem...), '\n'))
		if blk == nil {
			d.problems = []string{"PEM data cannot be decoded"}
			return d
		}
		d.der = blk.Bytes
	} else if len(data) > 0 && data[0] == 0x30 {
		d.der = data
		d.pem = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: d.der})
	} else {
		d.unknown = true
		return d
	}
	info, err := crl.Parse(bytes.NewReader(d.der), crl.Limits{}, nil)
	if err != nil {
		d.problems = []string{fmt.Sprintf("CRL cannot be parsed: %v", err), "downloaded CRL lastUpdate could not be derived"}
		return d
	}
	d.info = info
	return d
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
	return &verified{pem: d.pem, der: d.der, info: d.info, ca: ca}
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
