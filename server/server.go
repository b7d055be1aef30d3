// Package server implements dirmngr's Assuan commands on top of the assuan
// package: the per-session state (OPTION values, LDAPSERVER entries), the
// information and control commands (GETINFO, KILLDIRMNGR, RELOADDIRMNGR)
// and, through the CRL/OCSP machinery, the certificate checks. A Server is
// shared by all sessions; the daemon package owns sockets and processes.
package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/ldap"
	"github.com/dirmngr/dirmngr/ocsp"
	"github.com/dirmngr/dirmngr/revocation"
)

// Version is the dirmngr version reported by GETINFO version and the
// greeting. gpgsm warns when its dirmngr reports an older version than its
// own, so this follows the GnuPG release whose protocol is implemented.
const Version = "2.2.40"

// Control is how command handlers act on the process: KILLDIRMNGR and
// RELOADDIRMNGR. The daemon implements it.
type Control interface {
	// Reload re-reads the configuration and flushes certificate caches.
	Reload() error
	// Shutdown stops the daemon once the calling session has ended.
	Shutdown()
}

// Env describes where the daemon lives, for the greeting and GETINFO.
type Env struct {
	Homedir    string
	ConfigFile string // "" = none
	SocketPath string
}

// Server holds what all sessions share.
type Server struct {
	opts    atomic.Pointer[config.Options]
	env     Env
	log     *slog.Logger
	ctl     Control
	asrv    *assuan.Server
	started time.Time
	stats   counters
	chk     atomic.Pointer[revocation.Checker]
	ocsp    atomic.Pointer[ocsp.Checker]
}

// New returns a Server using opts until SetOptions replaces them.
func New(opts *config.Options, env Env, ctl Control, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{env: env, log: log, ctl: ctl, started: time.Now()}
	s.opts.Store(opts)
	cfg := env.ConfigFile
	if cfg == "" {
		cfg = "[none]"
	}
	s.asrv = &assuan.Server{
		Hello:       []string{"Home: " + env.Homedir, "Config: " + cfg, "Dirmngr " + Version + " at your service"},
		Commands:    s.commands(),
		ErrorSource: gpgerr.SourceDirmngr,
		Option:      s.option,
		Reset:       s.reset,
		IdleTimeout: config.Seconds(opts.IdleTimeout),
		Logger:      log,
	}
	return s
}

// Options returns the options currently in effect.
func (s *Server) Options() *config.Options { return s.opts.Load() }

// SetOptions installs a new options snapshot (after a reload); sessions
// use it from their next command on.
func (s *Server) SetOptions(o *config.Options) {
	s.opts.Store(o)
	s.asrv.IdleTimeout = config.Seconds(o.IdleTimeout)
}

// SocketPath returns the socket name reported by GETINFO socket_name.
func (s *Server) SocketPath() string { return s.env.SocketPath }

// ServeConn runs one Assuan session on conn until it ends.
func (s *Server) ServeConn(ctx context.Context, conn io.ReadWriter, id uint64, peer assuan.PeerCred) error {
	sess := assuan.NewSession(id, peer)
	sess.Value = &session{id: id}
	s.stats.sessionsTotal.Add(1)
	s.stats.sessionsActive.Add(1)
	defer s.stats.sessionsActive.Add(-1)
	return s.asrv.ServeConn(ctx, conn, sess)
}

// session is the per-connection state.
type session struct {
	id              uint64
	forceCRLRefresh bool
	auditEvents     bool
	httpCRL         bool
	httpProxy       string // "" = as configured
	httpProxySet    bool
	ldapServers     []*ldap.Server
	trusted         map[string]bool // ISTRUSTED answers of this session
}

func state(as *assuan.Session) *session {
	if st, ok := as.Value.(*session); ok {
		return st
	}
	st := &session{id: as.ID}
	as.Value = st
	return st
}

// counters are the statistics GETINFO stats and SIGUSR1 report.
type counters struct {
	sessionsTotal  atomic.Int64
	sessionsActive atomic.Int64
	requests       atomic.Int64
	errors         atomic.Int64
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Uptime         time.Duration
	SessionsTotal  int64
	SessionsActive int64
	Requests       int64
	Errors         int64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		Uptime:         time.Since(s.started).Truncate(time.Second),
		SessionsTotal:  s.stats.sessionsTotal.Load(),
		SessionsActive: s.stats.sessionsActive.Load(),
		Requests:       s.stats.requests.Load(),
		Errors:         s.stats.errors.Load(),
	}
}

// allowedControl reports whether the peer may use control commands: its uid
// must be the daemon's or root's. A peer without credentials (pipes in
// --server mode) is the process that started us.
func allowedControl(as *assuan.Session) bool {
	p := as.Peer
	return !p.Known || p.UID == os.Getuid() || p.UID == 0
}
