// Package revocation answers "is this certificate revoked?" from CRLs and
// owns GnuPG dirmngr's CRL check (crlcache.c, server.c): look the
// certificate up in the cache; if no current CRL is cached, obtain the
// certificate (SENDCERT), fetch its CRL from the distribution points and
// look again. It ties the CRL engine (crl), the store (crlcache), the
// certificate cache (certstore) and the fetchers (fetch, ldap) together so
// that gpgsm sees the same outcomes as with GnuPG: CRLs are keyed by the
// hash of their issuer DN; the CRL issuer is located through the authority
// key identifier, the certificate cache and the client (SENDCERT
// inquiries); a CRL whose chain ends in a root that is not in trusted-certs
// is confirmed with the client (ISTRUSTED) on every use.
//
// A Checker is built once per configuration (see package services) and
// never changes; per-client settings travel in a Request.
package revocation

import (
	"log/slog"
	"time"

	"github.com/dirmngr/dirmngr/certstore"
	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/ldap"
)

// Config tunes the checker.
type Config struct {
	Force            bool     // load CRLs whose nextUpdate has passed
	IgnoreHTTPDP     bool     // skip http(s) distribution points
	IgnoreLDAPDP     bool     // skip ldap distribution points
	DisableLDAP      bool     // --disable-ldap
	AddServers       bool     // --add-servers: remember LDAP hosts seen in DPs
	IgnoreExtensions []string // critical certificate extensions to accept (OIDs)
	Limits           crl.Limits
	ClockSkew        time.Duration // tolerated future thisUpdate; default 10 min
	Now              func() time.Time
}

// Parts are the services a Checker uses. Cache and Certs are required;
// without Fetch there are no HTTP downloads, without LDAP no LDAP.
type Parts struct {
	Cache *crlcache.Cache
	Certs *certstore.Store
	Fetch *fetch.Fetcher
	LDAP  *ldap.Options
	Log   *slog.Logger
	// Flights shares downloads between Checkers of successive
	// configurations; nil = a Checker of its own.
	Flights *Flights
}

// Checker is safe for concurrent use and immutable after New.
type Checker struct {
	cfg     Config
	cache   *crlcache.Cache
	certs   *certstore.Store
	fetch   *fetch.Fetcher
	ldap    *ldap.Options
	log     *slog.Logger
	flights *Flights
	signers signerCache
	misses  missCache // signers whose issuer's CRL could not be fetched lately
}

// New returns a Checker.
func New(cfg Config, p Parts) *Checker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = crl.DefaultClockSkew
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Flights == nil {
		p.Flights = NewFlights()
	}
	return &Checker{cfg: cfg, cache: p.Cache, certs: p.Certs, fetch: p.Fetch, ldap: p.LDAP, log: p.Log, flights: p.Flights}
}
