package revocation

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/ldap"
)

// SysconfDir is GnuPG's system configuration directory, home of the
// system-wide trusted-certs and extra-certs directories.
var SysconfDir = "/etc/gnupg"

// CertDirs returns the certificate directories read for homedir, with the
// source each one gives its certificates: the system directories first,
// then the homedir ones.
func CertDirs(homedir string) []struct {
	Dir    string
	Source certstore.Source
} {
	type d = struct {
		Dir    string
		Source certstore.Source
	}
	return []d{
		{filepath.Join(SysconfDir, "trusted-certs"), certstore.Trusted},
		{filepath.Join(SysconfDir, "extra-certs"), certstore.Extra},
		{filepath.Join(homedir, "trusted-certs"), certstore.Trusted},
		{filepath.Join(homedir, "extra-certs"), certstore.Extra},
	}
}

// LoadCerts (re)fills store from the certificate directories of homedir.
func LoadCerts(store *certstore.Store, homedir string, log *slog.Logger) {
	store.Clear()
	for _, d := range CertDirs(homedir) {
		store.LoadDir(d.Dir, d.Source, log)
	}
}

// ConfigFrom derives the checker configuration from dirmngr options.
func ConfigFrom(o *config.Options) Config {
	now, err := o.Clock()
	if err != nil {
		now = time.Now // Validate reports the bad value
	}
	return Config{
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

// FetchConfigFrom derives the HTTP fetcher configuration from options.
func FetchConfigFrom(o *config.Options) fetch.Config {
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

// Open opens the CRL cache below dirs.Cache, loads the certificate
// directories and returns a ready Checker.
func Open(o *config.Options, dirs config.Dirs, readOnly bool, log *slog.Logger) (*Checker, error) {
	cache, err := crlcache.Open(filepath.Join(dirs.Cache, "crls.d"), crlcache.Options{ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("opening the CRL cache: %w", err)
	}
	store := certstore.New()
	LoadCerts(store, dirs.Config, log)
	c := New(ConfigFrom(o), cache, store, fetch.New(FetchConfigFrom(o)), log)
	if err := c.configureLDAP(o, dirs); err != nil {
		cache.Close()
		return nil, err
	}
	return c, nil
}

func (c *Checker) configureLDAP(o *config.Options, dirs config.Dirs) error {
	list := o.LDAPServerListFile
	if list == "" {
		list = dirs.LDAPServers
	}
	lo, warnings, err := ldap.OptionsFrom(o.DisableLDAP, o.LDAPTimeout, o.LDAPProxy, o.OnlyLDAPProxy, o.LDAPServer, list, dirs.Config)
	for _, w := range warnings {
		c.log.Warn(w)
	}
	if err != nil {
		return fmt.Errorf("LDAP configuration: %w", err)
	}
	// TLS to LDAP servers trusts the system roots and trusted-certs.
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, d := range CertDirs(dirs.Config) {
		if d.Source != certstore.Trusted {
			continue
		}
		tmp := certstore.New()
		tmp.LoadDir(d.Dir, certstore.Trusted, nil)
		for _, e := range tmp.BySource(certstore.Trusted) {
			pool.AddCert(e.Cert)
		}
	}
	lo.RootCAs = pool
	c.SetLDAP(lo)
	return nil
}

// Reconfigure applies new options (after SIGHUP): checker settings, the
// fetcher, the certificate directories and the cache metadata.
func (c *Checker) Reconfigure(o *config.Options, dirs config.Dirs) error {
	cfg := ConfigFrom(o)
	cfg.ClockSkew = c.conf().ClockSkew
	c.cfgp.Store(&cfg)
	c.fetchp.Store(fetch.New(FetchConfigFrom(o)))
	LoadCerts(c.certs, dirs.Config, c.log)
	if err := c.configureLDAP(o, dirs); err != nil {
		return err
	}
	return c.cache.Reload()
}

// Close closes the CRL cache.
func (c *Checker) Close() error { return c.cache.Close() }
