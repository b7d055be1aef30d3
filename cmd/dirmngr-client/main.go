// Command dirmngr-client checks certificates, loads CRLs and looks up
// certificates through a running dirmngr.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dirmngr/dirmngr/cli"
)

func main() {
	if err := cli.NewClientCommand().Execute(); err != nil {
		var ee cli.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code)
		}
		fmt.Fprintf(os.Stderr, "dirmngr-client: %v\n", err)
		os.Exit(2)
	}
}
