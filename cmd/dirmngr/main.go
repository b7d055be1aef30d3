// Command dirmngr is a GnuPG-compatible CRL and OCSP daemon for gpgsm.
package main

import (
	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/cli/dirmngrcmd"
)

func main() {
	cli.Exit("dirmngr", dirmngrcmd.NewCommand().Execute(), 2)
}
