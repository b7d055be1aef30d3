// Package integration holds end-to-end tests that run the built programs
// against real peers: GnuPG's gpg-connect-agent, gpgsm and dirmngr-client,
// and GnuPG's own dirmngr for side-by-side comparisons. With CI=true a
// missing tool is a test failure, never a skip.
package integration
