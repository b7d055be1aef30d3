package crlcache

// SetRunSize shrinks the sorted runs (and their samples) so that tests
// exercise spilling and the two-way merge with small CRLs. It returns a
// function restoring the defaults.
func SetRunSize(entries, sample int) func() {
	oe, os := runEntries, sampleEvery
	runEntries, sampleEvery = entries, sample
	return func() { runEntries, sampleEvery = oe, os }
}
