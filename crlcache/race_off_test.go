//go:build !race

package crlcache_test

const raceEnabled = false
