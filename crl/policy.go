package crl

import (
	"math/big"
	"time"
)

// DefaultClockSkew is how far a CRL's thisUpdate may lie ahead of the local
// clock before the CRL counts as issued in the future. dirmngr and
// fetch-crl both use it.
const DefaultClockSkew = 10 * time.Minute

// Policy is the one time policy for accepting a CRL, shared by dirmngr
// (package revocation) and fetch-crl (package fetchcrl).
type Policy struct {
	// Skew is the tolerated difference between the issuer's clock and
	// ours for thisUpdate.
	Skew time.Duration
}

// DefaultPolicy is the policy with DefaultClockSkew.
var DefaultPolicy = Policy{Skew: DefaultClockSkew}

// Future reports whether thisUpdate is later than now plus the skew: the
// CRL is not issued yet as far as we can tell.
func (p Policy) Future(thisUpdate, now time.Time) bool {
	return thisUpdate.After(now.Add(p.Skew))
}

// Expired reports whether nextUpdate is set and has passed. A missing
// nextUpdate is the caller's decision (dirmngr assumes a day, fetch-crl
// rejects the CRL).
func (p Policy) Expired(nextUpdate, now time.Time) bool {
	return !nextUpdate.IsZero() && nextUpdate.Before(now)
}

// Version says how recent a CRL is.
type Version struct {
	Number     *big.Int // the cRLNumber extension; nil when absent or unknown
	ThisUpdate time.Time
}

// VersionOf returns the version of a parsed CRL.
func VersionOf(in *Info) Version { return Version{Number: in.Number, ThisUpdate: in.ThisUpdate} }

// Older reports whether v would roll back cur: a lower CRL number when
// both numbers are known and differ (RFC 5280 §5.2.3: numbers increase
// monotonically), else an earlier thisUpdate.
func (v Version) Older(cur Version) bool {
	if v.Number != nil && cur.Number != nil && v.Number.Cmp(cur.Number) != 0 {
		return v.Number.Cmp(cur.Number) < 0
	}
	return v.ThisUpdate.Before(cur.ThisUpdate)
}

// NumberFromHex parses a CRL number as Info.NumberHex renders it; nil for
// "" or anything that is not hex.
func NumberFromHex(s string) *big.Int {
	if s == "" {
		return nil
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		return nil
	}
	return n
}
