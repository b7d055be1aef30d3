package deps

import (
	"go/build"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestArchitectureTable keeps the package table of docs/architecture.md
// true: every package of the module has a row, and a row's "depends on"
// names exactly the module packages the package's non-test files import
// (in backquotes) and every outside module it imports (cobra, bbolt,
// x/crypto, …).
func TestArchitectureTable(t *testing.T) {
	rows := architectureRows(t)
	graph := moduleImports(t)
	for pkg, deps := range graph {
		if under(pkg, "cmd") || pkg == "." {
			continue // the mains are in the programs table
		}
		cell, ok := rows[pkg]
		if !ok {
			t.Errorf("docs/architecture.md: no row for package %s", pkg)
			continue
		}
		named := map[string]bool{}
		for _, m := range regexp.MustCompile("`([a-z0-9/]+)`").FindAllStringSubmatch(cell, -1) {
			if _, isPkg := graph[m[1]]; isPkg {
				named[m[1]] = true
			}
		}
		want := map[string]bool{}
		for _, d := range deps {
			want[d] = true
		}
		if missing, extra := setDiff(want, named), setDiff(named, want); len(missing)+len(extra) > 0 {
			t.Errorf("docs/architecture.md, %s depends on: missing %v, not imported %v (go list: %v)", pkg, missing, extra, sorted(want))
		}
		for _, ext := range externalImports(t, pkg) {
			if !strings.Contains(cell, ext) {
				t.Errorf("docs/architecture.md, %s depends on: %s not named", pkg, ext)
			}
		}
	}
	for pkg := range rows {
		if _, ok := graph[pkg]; !ok {
			t.Errorf("docs/architecture.md: row for %s, which is no package", pkg)
		}
	}
}

// architectureRows returns the "depends on" cell of each row of the
// Packages table, by package.
func architectureRows(t *testing.T) map[string]string {
	data, err := os.ReadFile("../../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Packages\n")
	if !ok {
		t.Fatal("docs/architecture.md has no Packages section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[pkg] = cells[len(cells)-2]
	}
	return rows
}

// externalImports names the outside modules pkg's non-test files import,
// the way the table does: the repository name (bbolt, cobra, go-ldap,
// go-systemd) or x/<name> for golang.org/x modules.
func externalImports(t *testing.T, pkg string) []string {
	p, err := build.ImportDir(filepath.Join("../..", pkg), 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, imp := range p.Imports {
		el := strings.Split(imp, "/")
		if !strings.Contains(el[0], ".") || strings.HasPrefix(imp, module) {
			continue
		}
		name := el[len(el)-1]
		switch {
		case el[0] == "golang.org" && len(el) > 2:
			name = "x/" + el[2]
		case el[0] == "github.com" && len(el) > 2:
			name = el[2]
		case len(el) > 1:
			name = el[1]
		}
		seen[name] = true
	}
	return sorted(seen)
}

func setDiff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
