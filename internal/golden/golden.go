// Package golden is the one golden-file helper of the tests: output is
// compared with a file under testdata (or a generated file checked in),
// and UPDATE_GOLDEN=1 rewrites the files instead.
package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Update reports whether golden files are to be rewritten (UPDATE_GOLDEN=1).
func Update() bool { return os.Getenv("UPDATE_GOLDEN") == "1" }

// Check compares got with the file at path, first rewriting the file when
// Update; a difference fails the test with a line diff.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if Update() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file: %v (UPDATE_GOLDEN=1 creates it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s is out of date (UPDATE_GOLDEN=1 rewrites it):\n%s", path, Diff(string(want), string(got)))
	}
}

// Diff is a minimal line diff for test messages.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}
