// Package server implements dirmngr's Assuan commands on top of the assuan
// package: the per-session state (OPTION values, LDAPSERVER entries), the
// information and control commands (GETINFO, KILLDIRMNGR, RELOADDIRMNGR)
// and the certificate commands. Handlers parse arguments, call the
// services of the configuration in effect (package services; one Set for
// a whole command) and map results to gpg-error codes; the CRL check
// itself is package revocation's. A Server is shared by all sessions;
// package lifecycle owns sockets and processes.
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
	"github.com/dirmngr/dirmngr/revocation"
	"github.com/dirmngr/dirmngr/services"
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

// Sets gives the services in effect (services.Live implements it).
type Sets interface {
	Current() *services.Set
}

// Server holds what all sessions share.
type Server struct {
	sets    Sets
	env     Env
	log     *slog.Logger
	ctl     Control
	started time.Time
	stats   counters
	gen     atomic.Pointer[generation]
}

// generation is the Assuan service for one Set: new sessions use the
// current one (its idle timeout), running sessions keep theirs.
type generation struct {
	set  *services.Set
	asrv *assuan.Server
}

// New returns a Server for the services sets provides; ctl (may be nil)
// carries out KILLDIRMNGR and RELOADDIRMNGR.
func New(env Env, sets Sets, ctl Control, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{sets: sets, env: env, log: log, ctl: ctl, started: time.Now()}
}

// assuanFor returns the Assuan service for set.
func (s *Server) assuanFor(set *services.Set) *assuan.Server {
	if g := s.gen.Load(); g != nil && g.set == set {
		return g.asrv
	}
	cfg := s.env.ConfigFile
	if cfg == "" {
		cfg = "[none]"
	}
	asrv := &assuan.Server{
		Hello:       []string{"Home: " + s.env.Homedir, "Config: " + cfg, "Dirmngr " + Version + " at your service"},
		Commands:    s.commands(),
		ErrorSource: gpgerr.SourceDirmngr,
		Option:      s.option,
		Reset:       s.reset,
		IdleTimeout: config.Seconds(set.Opts.IdleTimeout),
		Logger:      s.log,
	}
	s.gen.Store(&generation{set, asrv})
	return asrv
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
	return s.assuanFor(s.sets.Current()).ServeConn(ctx, conn, sess)
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

	req      *revocation.Request // the last request made (cmd.request), reused while the settings above stay
	progress func(int64)         // the session's CRL load progress reporter
	cmd      cmd                 // the command being handled (Server.handle)
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
	busy           atomic.Int64 // nanoseconds spent in command handlers
}

// Stats is a snapshot of the server's counters.
type Stats struct {
	Uptime         time.Duration
	SessionsTotal  int64
	SessionsActive int64
	Requests       int64
	Errors         int64
	// Busy is the time spent in command handlers: answering, not
	// waiting for the client between commands. Busy divided by Requests
	// is what a command costs the daemon besides its I/O.
	Busy time.Duration
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	return Stats{
		Uptime:         time.Since(s.started).Truncate(time.Second),
		SessionsTotal:  s.stats.sessionsTotal.Load(),
		SessionsActive: s.stats.sessionsActive.Load(),
		Requests:       s.stats.requests.Load(),
		Errors:         s.stats.errors.Load(),
		Busy:           time.Duration(s.stats.busy.Load()),
	}
}

// allowedControl reports whether the peer may use control commands: its uid
// must be the daemon's or root's. A peer without credentials (pipes in
// --server mode) is the process that started us.
func allowedControl(as *assuan.Session) bool {
	p := as.Peer
	return !p.Known || p.UID == os.Getuid() || p.UID == 0
}
