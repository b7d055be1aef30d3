package server

import "github.com/dirmngr/dirmngr/assuan"

// The certificate commands are implemented with the CRL cache and fetchers;
// until those are wired in they answer "Not implemented".

func (s *Server) cmdISValid(*assuan.Session, string) error   { return assuan.ErrNotImplemented }
func (s *Server) cmdCheckCRL(*assuan.Session, string) error  { return assuan.ErrNotImplemented }
func (s *Server) cmdCheckOCSP(*assuan.Session, string) error { return assuan.ErrNotImplemented }
func (s *Server) cmdLookup(*assuan.Session, string) error    { return assuan.ErrNotImplemented }
func (s *Server) cmdLoadCRL(*assuan.Session, string) error   { return assuan.ErrNotImplemented }
func (s *Server) cmdListCRLs(*assuan.Session, string) error  { return assuan.ErrNotImplemented }
func (s *Server) cmdCacheCert(*assuan.Session, string) error { return assuan.ErrNotImplemented }
func (s *Server) cmdValidate(*assuan.Session, string) error  { return assuan.ErrNotImplemented }
func (s *Server) cmdFlushCRLs(as *assuan.Session, _ string) error {
	if !allowedControl(as) {
		return assuan.ErrForbidden
	}
	return assuan.ErrNotImplemented
}
