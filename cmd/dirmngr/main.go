// Command dirmngr is a GnuPG-compatible CRL and OCSP daemon for gpgsm.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/dirmngrcmd"
)

func main() {
	if err := dirmngrcmd.NewCommand().Execute(); err != nil {
		var ee cli.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		fmt.Fprintf(os.Stderr, "dirmngr: %v\n", err)
		os.Exit(2)
	}
}
