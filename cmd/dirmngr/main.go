package main

import (
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/cryptobyte"
	_ "golang.org/x/crypto/ocsp"
)

func main() {}
