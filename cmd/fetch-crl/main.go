// Command fetch-crl retrieves and installs CRLs for IGTF trust anchors; a
// drop-in for fetch-crl 3.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/fetchcrlcmd"
)

func main() {
	cmd := fetchcrlcmd.NewCommand()
	cmd.SetArgs(fetchcrlcmd.ExpandLongPrefixes(cmd.Flags(), os.Args[1:]))
	if err := cmd.Execute(); err != nil {
		var ee cli.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		fmt.Fprintf(os.Stderr, "fetch-crl: %v\n", err)
		os.Exit(1)
	}
}
