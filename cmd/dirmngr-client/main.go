// Command dirmngr-client checks certificates, loads CRLs and looks up
// certificates through a running dirmngr.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/clientcmd"
)

func main() {
	if err := clientcmd.NewCommand().Execute(); err != nil {
		var ee cli.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		fmt.Fprintf(os.Stderr, "dirmngr-client: %v\n", err)
		os.Exit(2)
	}
}
