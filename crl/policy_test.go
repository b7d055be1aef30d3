package crl

import (
	"math/big"
	"testing"
	"time"
)

func TestPolicyTimes(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name            string
		this, next      time.Time
		future, expired bool
	}{
		{"current", now.Add(-time.Hour), now.Add(time.Hour), false, false},
		{"within-skew", now.Add(9 * time.Minute), now.Add(time.Hour), false, false},
		{"beyond-skew", now.Add(11 * time.Minute), now.Add(time.Hour), true, false},
		{"expired", now.Add(-2 * time.Hour), now.Add(-time.Second), false, true},
		{"no-next-update", now.Add(-time.Hour), time.Time{}, false, false},
	}
	for _, c := range cases {
		if got := DefaultPolicy.Future(c.this, now); got != c.future {
			t.Errorf("%s: Future = %v, want %v", c.name, got, c.future)
		}
		if got := DefaultPolicy.Expired(c.next, now); got != c.expired {
			t.Errorf("%s: Expired = %v, want %v", c.name, got, c.expired)
		}
	}
	if (Policy{}).Future(now.Add(time.Second), now) != true {
		t.Error("zero skew: a second ahead is not future")
	}
}

func TestVersionOlder(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	n := func(i int64) *big.Int { return big.NewInt(i) }
	cases := []struct {
		name   string
		v, cur Version
		older  bool
	}{
		{"lower-number", Version{n(1), t0.Add(time.Hour)}, Version{n(2), t0}, true},
		{"higher-number-older-time", Version{n(3), t0.Add(-time.Hour)}, Version{n(2), t0}, false},
		{"same-number-older-time", Version{n(2), t0.Add(-time.Hour)}, Version{n(2), t0}, true},
		{"no-number-older-time", Version{nil, t0.Add(-time.Hour)}, Version{n(2), t0}, true},
		{"no-numbers-newer-time", Version{nil, t0.Add(time.Hour)}, Version{nil, t0}, false},
		{"same", Version{n(2), t0}, Version{n(2), t0}, false},
	}
	for _, c := range cases {
		if got := c.v.Older(c.cur); got != c.older {
			t.Errorf("%s: Older = %v, want %v", c.name, got, c.older)
		}
	}
	if NumberFromHex("") != nil || NumberFromHex("zz") != nil || NumberFromHex("0A").Int64() != 10 {
		t.Error("NumberFromHex")
	}
}
