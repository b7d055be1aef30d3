// Package services is dirmngr's composition root: from one loaded
// configuration it builds, once, everything a session needs (options, the
// certificate store, the CRL cache handle, the HTTP and LDAP fetchers, the
// CRL and OCSP checkers) as one immutable Set. A reload (SIGHUP,
// RELOADDIRMNGR) builds a new Set and swaps a pointer, so a command sees
// the old or the new configuration as a whole, never a mix.
package services

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/ldap"
	"github.com/dirmngr/dirmngr/ocsp"
	"github.com/dirmngr/dirmngr/revocation"
)

// SysconfDir is GnuPG's system configuration directory, home of the
// system-wide trusted-certs and extra-certs directories.
var SysconfDir = "/etc/gnupg"

// Set is everything a session needs, built from one configuration. It
// never changes after Build.
type Set struct {
	Loaded *config.Loaded
	Opts   *config.Options
	Cache  *crlcache.Cache  // shared by all Sets of a process
	Certs  *certstore.Store // trusted-certs, extra-certs and learned certificates
	Fetch  *fetch.Fetcher   // HTTP
	LDAP   *ldap.Options    // LDAP servers and settings
	CRL    *revocation.Checker
	OCSP   *ocsp.Checker
}

// Shared is what successive Sets of a process share: the cache handle,
// the downloads in flight (not started twice across a reload) and the
// OCSP statistics (GETINFO stats counts on across reloads).
type Shared struct {
	Cache     *crlcache.Cache
	Flights   *revocation.Flights
	OCSPStats *ocsp.Counters
}

// Build makes a Set from l around sh.
func Build(l *config.Loaded, sh *Shared, log *slog.Logger) (*Set, error) {
	o := l.Opts
	cache := sh.Cache
	now, err := o.Clock()
	if err != nil {
		return nil, fmt.Errorf("faked system time: %w", err)
	}
	s := &Set{Loaded: l, Opts: o, Cache: cache, Certs: certstore.New(), Fetch: fetch.New(fetchConfig(o))}
	loadCerts(s.Certs, l.Dirs.Config, log)
	if s.LDAP, err = ldapOptions(l, s.Certs, log); err != nil {
		return nil, err
	}
	s.CRL = revocation.New(revocationConfig(o, now), revocation.Parts{
		Cache: cache, Certs: s.Certs, Fetch: s.Fetch, LDAP: s.LDAP, Log: log, Flights: sh.Flights,
	})
	oc, err := ocspConfig(o, l.Homedir, now)
	if err != nil {
		return nil, err
	}
	oc.Counters = sh.OCSPStats
	s.OCSP = ocsp.New(oc, s.Fetch, cache)
	return s, nil
}

// CertDir is a certificate directory and the source its certificates get.
type CertDir struct {
	Dir    string
	Source certstore.Source
}

// CertDirs returns the certificate directories read for homedir: the
// system directories first, then the homedir ones.
func CertDirs(homedir string) []CertDir {
	return []CertDir{
		{filepath.Join(SysconfDir, "trusted-certs"), certstore.Trusted},
		{filepath.Join(SysconfDir, "extra-certs"), certstore.Extra},
		{filepath.Join(homedir, "trusted-certs"), certstore.Trusted},
		{filepath.Join(homedir, "extra-certs"), certstore.Extra},
	}
}

func loadCerts(store *certstore.Store, homedir string, log *slog.Logger) {
	for _, d := range CertDirs(homedir) {
		store.LoadDir(d.Dir, d.Source, log)
	}
}

func revocationConfig(o *config.Options, now func() time.Time) revocation.Config {
	return revocation.Config{
		Now:              now,
		Force:            o.Force,
		IgnoreHTTPDP:     o.IgnoreHTTPDP,
		IgnoreLDAPDP:     o.IgnoreLDAPDP,
		DisableLDAP:      o.DisableLDAP,
		AddServers:       o.AddServers,
		IgnoreExtensions: o.IgnoreCertExtension,
		Limits:           crl.Limits{MaxBytes: int64(o.MaxCRLSize), MaxEntries: int64(o.MaxCRLEntries)},
	}
}

func fetchConfig(o *config.Options) fetch.Config {
	return fetch.Config{
		ConnectTimeout: time.Duration(o.ConnectTimeout) * time.Second,
		Timeout:        time.Duration(o.RequestTimeout) * time.Second,
		MaxBody:        int64(o.MaxCRLSize),
		// GnuPG follows absolute redirects only.
		NoRelativeRedirects: true,
		Proxy:               o.HTTPProxy,
		HonorEnvProxy:       o.HonorHTTPProxy,
		DisableHTTP:         o.DisableHTTP,
	}
}

func ocspConfig(o *config.Options, homedir string, now func() time.Time) (ocsp.Config, error) {
	signers, err := ocsp.ParseSigners(o.OCSPSigner, homedir)
	if err != nil {
		return ocsp.Config{}, err
	}
	return ocsp.Config{
		Now:           now,
		Responder:     o.OCSPResponder,
		Signers:       signers,
		IgnoreAIA:     o.IgnoreOCSPServiceURL,
		MaxClockSkew:  time.Duration(o.OCSPMaxClockSkew) * time.Second,
		MaxPeriod:     time.Duration(o.OCSPMaxPeriod) * time.Second,
		CurrentPeriod: time.Duration(o.OCSPCurrentPeriod) * time.Second,
		DisableHTTP:   o.DisableHTTP,
	}, nil
}

// ldapOptions builds the LDAP settings; TLS to LDAP servers trusts the
// system roots plus trusted-certs.
func ldapOptions(l *config.Loaded, certs *certstore.Store, log *slog.Logger) (*ldap.Options, error) {
	o := l.Opts
	list := o.LDAPServerListFile
	if list == "" {
		list = l.Dirs.LDAPServers
	}
	lo, warnings, err := ldap.OptionsFrom(o.DisableLDAP, o.LDAPTimeout, o.LDAPProxy, o.OnlyLDAPProxy, o.LDAPServer, list, l.Dirs.Config)
	for _, w := range warnings {
		log.Warn(w)
	}
	if err != nil {
		return nil, fmt.Errorf("LDAP configuration: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, e := range certs.BySource(certstore.Trusted) {
		pool.AddCert(e.Cert)
	}
	lo.RootCAs = pool
	return lo, nil
}

// Live is the Set in effect for a process, replaced whole on reload.
type Live struct {
	cur    atomic.Pointer[Set]
	reload sync.Mutex // one reload at a time
	shared Shared
	log    *slog.Logger
}

// Open opens the CRL cache of l (below its cache directory) and builds
// the first Set.
func Open(l *config.Loaded, readOnly bool, log *slog.Logger) (*Live, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// An LDAP reply (a CRL is one value of one entry) is bounded by the CRL
	// size limit of the first configuration; the bound is process-wide.
	ldap.LimitReplySize(int64(l.Opts.MaxCRLSize) + 64<<10)
	cache, err := crlcache.Open(filepath.Join(l.Dirs.Cache, "crls.d"), crlcache.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("opening the CRL cache: %w", err)
	}
	lv := &Live{shared: Shared{Cache: cache, Flights: revocation.NewFlights(), OCSPStats: &ocsp.Counters{}}, log: log}
	s, err := Build(l, &lv.shared, log)
	if err != nil {
		cache.Close()
		return nil, err
	}
	lv.cur.Store(s)
	return lv, nil
}

// Current returns the Set in effect. A command uses one Set throughout.
func (lv *Live) Current() *Set { return lv.cur.Load() }

// Reload builds a Set from l and puts it in effect. On error the previous
// Set stays in effect. The CRL cache is kept as it is: this process holds
// it exclusively, so its records in memory are current (re-reading them
// would race with a load committing meanwhile and lose its record).
func (lv *Live) Reload(l *config.Loaded) error {
	lv.reload.Lock()
	defer lv.reload.Unlock()
	s, err := Build(l, &lv.shared, lv.log)
	if err != nil {
		return err
	}
	// The replaced Set's kept-alive HTTP connections would otherwise stay
	// open until the servers drop them; a command still running on it
	// keeps its active connections.
	if old := lv.cur.Swap(s); old != nil {
		old.Fetch.CloseIdleConnections()
	}
	return nil
}

// Close closes the CRL cache.
func (lv *Live) Close() error { return lv.shared.Cache.Close() }
