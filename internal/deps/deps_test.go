// Package deps holds the test that keeps the package graph layered, in the
// manner of Go's own go/build/deps_test.go: the wire protocol knows no
// dirmngr, stores know no wire, fetchers or protocol, and gpg-error is a leaf.
package deps

import (
	"go/build"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/dirmngr/dirmngr/"

// rules maps a package (relative to the module) to the module packages it
// must never reach, directly or through others. "*" means every module
// package except those listed in allowed.
var rules = []struct {
	pkg       string
	forbidden []string
	allowed   []string // with forbidden "*": the only module packages allowed
}{
	{pkg: "gpgerr", forbidden: []string{"*"}},
	{pkg: "assuan", forbidden: []string{"*"}, allowed: []string{"gpgerr"}},
	{pkg: "crlcache", forbidden: []string{"assuan", "server", "lifecycle", "fetch", "ocsp", "ldap", "revocation", "services", "cli"}},
	{pkg: "certstore", forbidden: []string{"assuan", "server", "lifecycle", "fetch", "ocsp", "ldap", "revocation", "crlcache", "services", "cli"}},
	{pkg: "crl", forbidden: []string{"assuan", "server", "lifecycle", "fetch", "ocsp", "ldap", "revocation", "crlcache", "services", "cli"}},
	{pkg: "certid", forbidden: []string{"*"}, allowed: []string{}},
	{pkg: "fetch", forbidden: []string{"assuan", "server", "lifecycle", "revocation", "crlcache", "certstore", "ocsp", "ldap", "services", "cli"}},
	{pkg: "ldap", forbidden: []string{"assuan", "server", "lifecycle", "revocation", "crlcache", "ocsp", "services", "cli"}},
	{pkg: "ocsp", forbidden: []string{"assuan", "server", "lifecycle", "revocation", "ldap", "services", "cli"}},
	{pkg: "revocation", forbidden: []string{"assuan", "server", "lifecycle", "services", "cli"}},
	{pkg: "fetchcrl", forbidden: []string{"server", "lifecycle", "revocation", "crlcache", "ocsp", "ldap", "services", "cli"}},
}

// wireUsers are the only packages (with their subpackages) that may import
// the wire package directly: the command handlers, the process lifecycle, the
// programs' command trees (the client among them), fetch-crl's dirmngr feed
// and the end-to-end tests.
var wireUsers = []string{"assuan", "server", "lifecycle", "cli", "cmd", "fetchcrl", "integration"}

func wireUser(pkg string) bool {
	for _, u := range wireUsers {
		if under(pkg, u) {
			return true
		}
	}
	return false
}

// under reports whether pkg is base or one of its subpackages.
func under(pkg, base string) bool {
	return pkg == base || strings.HasPrefix(pkg, base+"/")
}

// moduleImports returns, for every package directory of the module, the
// module packages its non-test files import.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	graph := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "build") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		var deps []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				deps = append(deps, strings.TrimPrefix(imp, module))
			}
		}
		graph[rel] = deps
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return graph
}

// reach returns every module package reachable from pkg.
func reach(graph map[string][]string, pkg string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range graph[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	return seen
}

func TestLayering(t *testing.T) {
	graph := moduleImports(t)
	if len(graph) < 10 {
		t.Fatalf("found only %d packages; is the module root right?", len(graph))
	}
	for _, r := range rules {
		if _, ok := graph[r.pkg]; !ok {
			t.Errorf("package %s not found", r.pkg)
			continue
		}
		reached := reach(graph, r.pkg)
		var bad []string
		for dep := range reached {
			for _, f := range r.forbidden {
				if under(dep, f) || f == "*" && !contains(r.allowed, dep) {
					bad = append(bad, dep)
				}
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("%s reaches forbidden packages %v", r.pkg, bad)
		}
	}
	for pkg, deps := range graph {
		if contains(deps, "assuan") && !wireUser(pkg) {
			t.Errorf("%s imports the wire package assuan; only %v may", pkg, wireUsers)
		}
	}
}

// TestGpgerrIsLeaf checks that gpgerr imports only the standard library.
func TestGpgerrIsLeaf(t *testing.T) {
	p, err := build.ImportDir("../../gpgerr", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range p.Imports {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
			t.Errorf("gpgerr imports %s; it must import only the standard library", imp)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
