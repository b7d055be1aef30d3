package fetchcrl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// feedTimeout bounds one conversation with the daemon.
const feedTimeout = 2 * time.Minute

// feedDirmngr loads a newly installed CRL into a running dirmngr
// (--dirmngr / dirmngr_socket). Over one connection it first hands the
// daemon the CA certificate that verified the CRL (CACHECERT), so that the
// daemon need not have it among its own certificates, then names the
// installed file by its absolute path (LOADCRL), which the daemon lists as
// the CRL's source. Only when no file format was written (nss alone) is a
// temporary file used.
func (t *taRun) feedDirmngr(v *verified, installed string) {
	sock := t.s.DirmngrSocket
	if sock == "" {
		return
	}
	path, cleanup, err := feedFile(v, installed)
	if err != nil {
		t.log.Warn("cannot feed dirmngr: %v", err)
		return
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), feedTimeout)
	defer cancel()
	c, err := assuan.Dial(sock)
	if err != nil {
		t.log.Warn("cannot feed dirmngr at %s: %v", sock, err)
		return
	}
	defer c.Close()
	if v.ca != nil {
		err := c.Transact(ctx, "CACHECERT", &assuan.Handlers{Inquire: func(kw, _ string) ([]byte, error) {
			if kw != "TARGETCERT" {
				return nil, fmt.Errorf("unexpected inquiry %s", kw)
			}
			return v.ca.Raw, nil
		}})
		if err != nil && gpgerr.CodeOf(err) != gpgerr.ErrDupValue {
			t.log.Verbose(1, "dirmngr did not take the CA certificate of %s: %s", t.a.Alias, gpgerr.CodeOf(err).Error())
		}
	}
	if err := c.Transact(ctx, "LOADCRL "+assuan.EscapePlus(path), &assuan.Handlers{}); err != nil {
		t.log.Warn("dirmngr refused the CRL of %s: %s", t.a.Alias, gpgerr.CodeOf(err).Error())
		return
	}
	t.log.Verbose(2, "CRL of %s loaded into dirmngr from %s", t.a.Alias, path)
}

// feedFile is the absolute name of the file for LOADCRL: the installed
// file, or a temporary DER file when none was written.
func feedFile(v *verified, installed string) (string, func(), error) {
	if installed != "" {
		abs, err := filepath.Abs(installed)
		return abs, func() {}, err
	}
	tmp, err := os.CreateTemp("", "fetch-crl-dirmngr-*.crl")
	if err != nil {
		return "", nil, err
	}
	name := tmp.Name()
	cleanup := func() { os.Remove(name) }
	tmp.Close()
	if err := writeFile(name, 0o600, v.writeDER); err != nil {
		cleanup()
		return "", nil, err
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return abs, cleanup, nil
}
