package gpgerr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestOf: CodeOf, SourceOf and DetailOf find the gpg-error in an error
// chain, whether the error is one (fast path) or wraps one.
func TestOf(t *testing.T) {
	detailed := &Error{Code: ErrInvCRL, Source: SourceKSBA, Detail: "bad signature"}
	for _, tc := range []struct {
		name   string
		err    error
		code   Code
		source Source
		detail string
	}{
		{"nil", nil, ErrNoError, SourceUnknown, ""},
		{"a code", ErrCertRevoked, ErrCertRevoked, SourceUnknown, ""},
		{"an Error", detailed, ErrInvCRL, SourceKSBA, "bad signature"},
		{"a wrapped code", fmt.Errorf("loading: %w", ErrNoCRLKnown), ErrNoCRLKnown, SourceUnknown, ""},
		{"a wrapped Error", fmt.Errorf("loading: %w", detailed), ErrInvCRL, SourceKSBA, "bad signature"},
		{"an Error wrapping a cause", Wrap(ErrNotFound, errors.New("cause")), ErrNotFound, SourceUnknown, ""},
		{"a deadline", fmt.Errorf("fetch: %w", context.DeadlineExceeded), ErrTimeout, SourceUnknown, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CodeOf(tc.err); got != tc.code {
				t.Errorf("CodeOf = %v, want %v", got, tc.code)
			}
			if got := SourceOf(tc.err); got != tc.source {
				t.Errorf("SourceOf = %v, want %v", got, tc.source)
			}
			if got := DetailOf(tc.err); got != tc.detail {
				t.Errorf("DetailOf = %q, want %q", got, tc.detail)
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { CodeOf(ErrCertRevoked); SourceOf(detailed); DetailOf(detailed) }); n > 0 {
		t.Errorf("%.1f allocations for a direct code or Error, want 0", n)
	}
}
