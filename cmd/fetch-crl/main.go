// Command fetch-crl retrieves and installs CRLs for IGTF trust anchors; a
// drop-in for fetch-crl 3.
package main

import (
	"os"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/fetchcrlcmd"
)

func main() {
	cmd := fetchcrlcmd.NewCommand()
	cmd.SetArgs(fetchcrlcmd.ExpandLongPrefixes(cmd.Flags(), os.Args[1:]))
	cli.Exit("fetch-crl", cmd.Execute(), 1)
}
