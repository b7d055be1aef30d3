// Command dirmngr-client checks certificates, loads CRLs and looks up
// certificates through a running dirmngr.
package main

import (
	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/clientcmd"
)

func main() {
	cli.Exit("dirmngr-client", clientcmd.NewCommand().Execute(), 2)
}
