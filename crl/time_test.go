package crl

import (
	"fmt"
	"testing"
	"time"
)

// TestParseTimeMatchesTimeDate checks the calendar arithmetic of parseTime
// against time.Date, and that impossible dates are refused.
func TestParseTimeMatchesTimeDate(t *testing.T) {
	for _, y := range []int{0, 1, 4, 99, 100, 400, 1600, 1900, 1950, 1969, 1970, 1999, 2000, 2024, 2049, 2100, 2400, 9999} {
		for m := 1; m <= 12; m++ {
			for d := 1; d <= 31; d++ {
				in := fmt.Sprintf("%04d%02d%02d235859Z", y, m, d)
				got, err := parseTime(0x18, []byte(in))
				want := time.Date(y, time.Month(m), d, 23, 58, 59, 0, time.UTC)
				if want.Day() != d {
					if err == nil {
						t.Errorf("%s: accepted an impossible date as %v", in, got)
					}
					continue
				}
				if err != nil || got != want {
					t.Errorf("%s: got %v, %v; want %v", in, got, err, want)
				}
			}
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"500101000000Z", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"491231235959Z", time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"240229120000Z", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)},
	} {
		got, err := parseTime(0x17, []byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("UTCTime %s: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseTime(0x17, []byte("230229000000Z")); err == nil {
		t.Error("UTCTime 2023-02-29 accepted")
	}
}
