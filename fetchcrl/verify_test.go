package fetchcrl

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/crl"
)

// TestTimeProblems: fetch-crl's time and rollback checks on crl.Policy,
// the policy dirmngr uses (10 minutes of clock skew for thisUpdate).
func TestTimeProblems(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	h := time.Hour
	cases := []struct {
		name       string
		this, next time.Duration // from now; next 0: no nextUpdate
		installed  time.Duration // installed lastUpdate from now; 0: none
		problems   string
		warn       string
	}{
		{"current", -h, 48 * h, 0, "", ""},
		{"expired", -72 * h, -h, 0, "CRL has nextUpdate time in the past", ""},
		{"no-next-update", -h, 0, 0, "CRL nextUpdate determination failed", ""},
		{"within-skew", 5 * time.Minute, 48 * h, 0, "", ""},
		{"future", 11 * time.Minute, 48 * h, 0, "CRL has lastUpdate time in the future", ""},
		{"newer", -h, 48 * h, -2 * h, "", ""},
		{"same", -h, 48 * h, -h, "", ""},
		{"rollback", -3 * h, 48 * h, -h, "downloaded CRL lastUpdate predates installed CRL,|and current version has sane timestamp", ""},
		{"installed-in-future", -h, 48 * h, 2 * h, "", "replaced with downloaded CRL since current one has lastUpdate in the future"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			l, _ := NewLog(&out, 0, "qualified", "daemon")
			st := state{"mtime": strconv.FormatInt(now.Add(-h).Unix(), 10)}
			if c.installed != 0 {
				st["lastupdate"] = strconv.FormatInt(now.Add(c.installed).Unix(), 10)
			}
			tr := &taRun{r: &Runner{Now: func() time.Time { return now }}, a: &Anchor{Name: "CA", Alias: "CA"}, log: l.Global(), states: []state{st}}
			info := &crl.Info{ThisUpdate: now.Add(c.this)}
			if c.next != 0 {
				info.NextUpdate = now.Add(c.next)
			}
			if got := strings.Join(tr.timeProblems(0, info), "|"); got != c.problems {
				t.Errorf("problems %q, want %q", got, c.problems)
			}
			if c.warn == "" && out.Len() > 0 || !strings.Contains(out.String(), c.warn) {
				t.Errorf("log %q, want %q", out.String(), c.warn)
			}
		})
	}
}
