package crlcache

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/crl"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// State flags of a cached CRL (GnuPG's "i<n>" records).
const (
	FlagTooOld          = 1 // still too old after an update
	FlagUnknownCritical = 2 // unknown critical CRL extension
)

// CRLID names one cached CRL of an issuer: an issuer holds a base CRL, a
// delta CRL, and one of each per issuing distribution point (partitioned
// CRLs), each in its own slot.
type CRLID struct {
	// Issuer is the CRL issuer's hash (40 uppercase hex, certid.IssuerHash).
	Issuer string
	// Scope is "" for a CRL without issuingDistributionPoint, else the
	// 40 uppercase hex digits of SHA-1 over the extension's value (the DER
	// of IssuingDistributionPoint).
	Scope string
	// Delta marks a delta CRL (deltaCRLIndicator).
	Delta bool
}

// BaseID is the slot of issuerHash's complete CRL (no IDP, not a delta):
// the one GnuPG's dirmngr knows, addressed by Get, Lookup and ForEach.
func BaseID(issuerHash string) CRLID { return CRLID{Issuer: issuerHash} }

// Key is the slot's key in the database: "<issuer>", "<issuer>/<scope>",
// with "/delta" appended for a delta CRL. The base CRL's key is the issuer
// hash alone, as in the version 1 layout.
func (id CRLID) Key() string {
	k := id.Issuer
	if id.Scope != "" || id.Delta {
		k += "/" + id.Scope
	}
	if id.Delta {
		k += "/delta"
	}
	return k
}

// parseKey is the inverse of Key.
func parseKey(k string) (CRLID, error) {
	parts := strings.Split(k, "/")
	id := CRLID{Issuer: parts[0]}
	switch {
	case len(parts) == 1:
	case len(parts) == 2 && parts[1] != "":
		id.Scope = parts[1]
	case len(parts) == 3 && parts[2] == "delta":
		id.Scope, id.Delta = parts[1], true
	default:
		return CRLID{}, fmt.Errorf("crlcache: bad CRL key %q", k)
	}
	if !isHash(id.Issuer) || (id.Scope != "" && !isHash(id.Scope)) {
		return CRLID{}, fmt.Errorf("crlcache: bad CRL key %q", k)
	}
	return id, nil
}

func isHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 20 && s == strings.ToUpper(s)
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// Meta describes one cached CRL.
type Meta struct {
	IssuerHash  string    `json:"hash"`
	Issuer      string    `json:"issuer"`
	URL         string    `json:"url"`
	ThisUpdate  time.Time `json:"this"`
	NextUpdate  time.Time `json:"next"`
	Number      string    `json:"number,omitempty"` // hex, "" = none
	AKIKeyID    []byte    `json:"aki_keyid,omitempty"`
	AKISerial   []byte    `json:"aki_serial,omitempty"`
	AKIIssuer   []string  `json:"aki_issuer,omitempty"`
	TrustFpr    string    `json:"trust_fpr,omitempty"` // root to confirm with ISTRUSTED; "" = system trusted
	Flags       int       `json:"flags,omitempty"`
	ETag        string    `json:"etag,omitempty"`
	LastMod     string    `json:"last_modified,omitempty"`
	FetchedAt   time.Time `json:"fetched"`
	LastRefresh time.Time `json:"last_refresh"`
	Entries     int64     `json:"entries"`
	Generation  uint64    `json:"gen"`

	// Scope is the slot's partition: "" or the hex SHA-1 of the IDP
	// (see CRLID.Scope).
	Scope string `json:"scope,omitempty"`
	// Delta marks a delta CRL.
	Delta bool `json:"delta,omitempty"`
	// BaseNumber is a delta CRL's BaseCRLNumber (hex, like Number).
	BaseNumber string `json:"base_number,omitempty"`
	// IDP is the DER of the issuingDistributionPoint, nil when absent.
	IDP []byte `json:"idp,omitempty"`
	// Indirect lists, set by Commit, the issuer hashes of other CAs this
	// (indirect) CRL has entries for (Staging.AddFor).
	Indirect []string `json:"indirect,omitempty"`
	// Freshest marks a CRL that names where its delta CRLs are
	// (freshestCRL); IssuerDER is the CRL issuer's Name (DER, for names
	// relative to it); Signer is the CRL signer's certificate (DER), whose
	// own revocation status is checked on use when it is a separate key
	// (package revocation).
	Freshest  bool   `json:"freshest,omitempty"`
	IssuerDER []byte `json:"issuer_der,omitempty"`
	Signer    []byte `json:"signer,omitempty"`
	// FreshestURLs are the URIs of the freshestCRL, fetched when a delta
	// is needed.
	FreshestURLs []string `json:"freshest_urls,omitempty"`
}

// ID returns the slot of m.
func (m *Meta) ID() CRLID { return CRLID{Issuer: m.IssuerHash, Scope: m.Scope, Delta: m.Delta} }

// Entry is a revoked serial as stored.
type Entry struct {
	Reason    uint16
	RevokedAt time.Time
}

// Result is the answer of one lookup: the CRL's metadata and, when the
// serial is listed, its entry. Meta and entry come from one snapshot.
// Meta is the cache's own record, shared by every lookup of that CRL (a
// new CRL gets a new record, so it never changes): read it, never
// modify it.
type Result struct {
	Meta    *Meta
	Entry   Entry
	Revoked bool
}

// ErrRollback is wrapped when a CRL older than the cached one is offered.
var ErrRollback = fmt.Errorf("crlcache: CRL is older than the cached one: %w", gpgerr.ErrInvCRL)

// isOlder reports whether m would roll back cur (crl.Version.Older, the
// rollback rule dirmngr and fetch-crl share).
func isOlder(m, cur *Meta) bool {
	return crl.Version{Number: crl.NumberFromHex(m.Number), ThisUpdate: m.ThisUpdate}.
		Older(crl.Version{Number: crl.NumberFromHex(cur.Number), ThisUpdate: cur.ThisUpdate})
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func genName(g uint64) string { return fmt.Sprintf("crl-%016x.blk", g) }
