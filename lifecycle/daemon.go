// Package lifecycle runs dirmngr as a process: it owns the listening socket
// (own, inherited from `--daemon`'s parent, or from systemd), the accept loop
// with its session cap, signals (HUP reload, TERM graceful with the third
// forcing, INT immediate, USR1/USR2 statistics), systemd notifications and
// the watch on its own socket file. Commands are served by package server.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/dirmngr/dirmngr/assuan"
	"github.com/dirmngr/dirmngr/cli"
	"github.com/dirmngr/dirmngr/config"
	"github.com/dirmngr/dirmngr/crlcache"
	"github.com/dirmngr/dirmngr/gpgerr"
	"github.com/dirmngr/dirmngr/logging"
	"github.com/dirmngr/dirmngr/server"
	"github.com/dirmngr/dirmngr/services"
)

// Daemon is one running dirmngr process.
type Daemon struct {
	args   []string // command line, re-parsed on reload
	loaded *config.Loaded
	Log    *slog.Logger
	level  *slog.LevelVar
	out    *logging.Output
	stderr io.Writer
	srv    *server.Server
	live   *services.Live
	reload sync.Mutex // one Reload at a time (SIGHUP, RELOADDIRMNGR)

	sigs chan os.Signal // signals Serve handles; caught from Prepare on

	// Notify sends a systemd notification (nil outside --supervised).
	Notify func(state string)

	mu         sync.Mutex
	ln         net.Listener
	socketPath string
	conns      map[net.Conn]struct{}
	sessions   sync.WaitGroup
	active     atomic.Int64
	nextID     atomic.Uint64
	sem        chan struct{}
	stopping   bool          // no longer accepting
	stopCh     chan struct{} // closed when the daemon should exit
	stopOnce   sync.Once
	killAfter  atomic.Bool // KILLDIRMNGR: exit when that session ends
	termCount  int
	socketGone atomic.Bool
}

// New prepares a daemon from the loaded configuration. args is the command
// line (without the program name) so that a reload sees it again.
func New(loaded *config.Loaded, args []string, stderr io.Writer) (*Daemon, error) {
	d := &Daemon{args: args, loaded: loaded, stderr: stderr, conns: map[net.Conn]struct{}{}, stopCh: make(chan struct{})}
	d.level = new(slog.LevelVar)
	d.out = logging.NewOutput(stderr)
	o := loaded.Opts
	timestamps := os.Getenv("JOURNAL_STREAM") == ""
	if sock, err := DefaultSocketPath(loaded, false); err == nil {
		d.out.DefaultSocket = filepath.Join(filepath.Dir(sock), "S.log") // "log-file socket://"
	}
	if o.LogFile != "" {
		if err := d.out.OpenFile(o.LogFile, stderr); err != nil {
			return nil, err
		}
	}
	d.Log = slog.New(logging.NewHandler(d.out, "dirmngr", timestamps, d.level))
	d.applyLevel(o)
	for _, w := range loaded.Warnings {
		d.Log.Warn(w)
	}
	d.sem = make(chan struct{}, o.MaxSessions)
	return d, nil
}

func (d *Daemon) applyLevel(o *config.Options) {
	lvl, _ := config.DebugLevelValue(o.DebugLevel)
	if o.DebugAll {
		lvl = 9
	}
	d.level.Set(logging.Level(o.Quiet, o.Verbose, lvl))
}

// Server returns the command server (created by Serve or ServeStdio).
func (d *Daemon) Server() *server.Server { return d.srv }

func (d *Daemon) newServer(socketPath string) error {
	d.socketPath = socketPath
	if d.loaded.Dirs.System {
		d.Log.Info("system mode: configuration in " + d.loaded.Dirs.Config + ", CRL cache in " + d.loaded.Dirs.Cache)
		if err := os.MkdirAll(d.loaded.Dirs.Cache, 0o755); err != nil {
			return fmt.Errorf("creating the cache directory: %w", err)
		}
	}
	crlcache.CorruptionHook = func(path, aside string, cause error) {
		d.Log.Error("the CRL cache was unreadable; kept it aside and started with an empty cache", "file", path, "kept", aside, "err", cause)
	}
	crlcache.DamageHook = func(what, path string, cause error) {
		if cause == nil {
			d.Log.Warn("CRL cache: "+what, "file", path)
			return
		}
		d.Log.Error("CRL cache: "+what, "file", path, "err", cause)
	}
	live, err := services.Open(d.loaded, false, d.Log)
	if err != nil {
		return err
	}
	d.live = live
	d.srv = server.New(server.Env{
		Homedir: d.loaded.Homedir, ConfigFile: d.loaded.ConfigFile, SocketPath: socketPath,
	}, live, d, d.Log)
	return nil
}

// Prepare creates the command server and opens the CRL cache for a daemon
// serving on socketPath; Serve calls it when it has not been called.
// Calling it before reporting readiness lets a detaching parent see
// start-up failures such as a locked cache.
//
// The signals Serve handles are caught from here on, so that a SIGHUP sent
// as soon as the daemon reports readiness reloads instead of killing it.
func (d *Daemon) Prepare(socketPath string) error {
	if d.srv != nil {
		return nil
	}
	if err := d.newServer(socketPath); err != nil {
		return err
	}
	d.sigs = make(chan os.Signal, 8)
	signal.Notify(d.sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	return nil
}

// Close releases the daemon's resources (the CRL cache).
func (d *Daemon) Close() error {
	if d.live != nil {
		return d.live.Close()
	}
	return nil
}

// DefaultSocketPath returns the socket path for the loaded configuration:
// --socket-name, else GnuPG's socket directory for the homedir + S.dirmngr.
func DefaultSocketPath(l *config.Loaded, create bool) (string, error) {
	if l.Opts.SocketName != "" {
		return l.Opts.SocketName, nil
	}
	if l.Dirs.Socket != "" {
		if create {
			if err := os.MkdirAll(filepath.Dir(l.Dirs.Socket), 0o755); err != nil {
				return "", fmt.Errorf("creating the socket directory: %w", err)
			}
		}
		return l.Dirs.Socket, nil
	}
	dir, err := config.SocketDir(l.Homedir, "/run/user", create)
	if err != nil {
		return "", err
	}
	return dir + "/S.dirmngr", nil
}

// ServeStdio runs a single session on stdin/stdout (--server); the
// session id is 0 as in GnuPG.
func (d *Daemon) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	path, err := DefaultSocketPath(d.loaded, false)
	if err != nil {
		return err
	}
	if err := d.newServer(path); err != nil {
		return err
	}
	defer d.Close()
	rw := struct {
		io.Reader
		io.Writer
	}{in, out}
	err = d.srv.ServeConn(ctx, rw, 0, assuan.PeerCred{})
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// Serve accepts connections on ln until the daemon is stopped by a signal,
// KILLDIRMNGR or the removal of its socket file. path is the socket file
// name ("" if ln has none that Serve should watch).
func (d *Daemon) Serve(ln net.Listener, path string) error {
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	if err := d.Prepare(path); err != nil {
		return err
	}
	defer d.Close()
	d.Log.Info("dirmngr (Go) " + cli.ProgramVersion + " started (GnuPG " + server.Version + " compatible)")
	d.Log.Info("listening on socket '" + path + "'")

	sigs := d.sigs
	defer signal.Stop(sigs)
	signal.Ignore(syscall.SIGPIPE)

	// Read before sessions start: a RELOADDIRMNGR replaces d.loaded.
	checkOwnSocket := !d.loaded.Opts.DisableCheckOwnSocket
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		d.acceptLoop(ln)
	}()
	watchStop := make(chan struct{})
	defer close(watchStop)
	if path != "" && checkOwnSocket {
		go d.watchSocket(path, watchStop)
	}
	if interval, err := daemon.SdWatchdogEnabled(false); err == nil && interval > 0 && d.Notify != nil {
		go d.watchdog(interval/2, watchStop)
	}
	if d.Notify != nil {
		d.Notify(daemon.SdNotifyReady)
	}

	for {
		select {
		case sig := <-sigs:
			d.handleSignal(sig.(syscall.Signal))
		case <-d.stopCh:
			d.stopAccepting()
			<-acceptDone
			d.closeAll()
			d.sessions.Wait()
			if d.Notify != nil {
				d.Notify(daemon.SdNotifyStopping)
			}
			d.Log.Info("dirmngr (Go) " + cli.ProgramVersion + " stopped")
			return nil
		}
	}
}

func (d *Daemon) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			d.mu.Lock()
			stopping := d.stopping
			d.mu.Unlock()
			if stopping || errors.Is(err, net.ErrClosed) {
				return
			}
			d.Log.Error("accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !d.acquireSlot() {
			d.Log.Warn("too many sessions, all busy - refusing a connection", "max", cap(d.sem))
			c.SetWriteDeadline(time.Now().Add(time.Second))
			fmt.Fprintf(c, "ERR %d %s <Dirmngr> - too many sessions\n",
				gpgerr.WireValue(gpgerr.SourceDirmngr, gpgerr.ErrAssGeneral), gpgerr.ErrAssGeneral.Error())
			c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, id: d.nextID.Add(1), raw: newRawIO(c)}
		d.mu.Lock()
		if d.stopping {
			d.mu.Unlock()
			<-d.sem
			c.Close()
			return
		}
		d.conns[tc] = struct{}{}
		d.sessions.Add(1)
		d.mu.Unlock()
		go d.session(tc)
	}
}

func (d *Daemon) session(c *trackedConn) {
	id := c.id
	d.active.Add(1)
	defer func() {
		if c.raw != nil {
			// A close with unread bytes would reset the client.
			if err := c.raw.settle(); err != nil && !clientGone(err) {
				d.Log.Debug("consuming the last command", "session", id, "err", err)
			}
		}
		c.Close()
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		<-d.sem
		n := d.active.Add(-1)
		d.sessions.Done()
		d.afterSession(n)
	}()
	peer := assuan.PeerCredOf(c.Conn)
	d.Log.Debug("handler for session started", "session", id, "pid", peer.PID, "uid", peer.UID)
	err := d.srv.ServeConn(context.Background(), c, id, peer)
	if err != nil && !clientGone(err) {
		d.Log.Info("session ended", "session", id, "err", err)
	}
	d.Log.Debug("handler for session terminated", "session", id)
}

// clientGone reports whether a session ended only because the client went
// away (EOF, closed, broken pipe, reset): nothing worth logging.
func clientGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// afterSession runs when a session ended; n sessions remain.
func (d *Daemon) afterSession(n int64) {
	if d.killAfter.Load() {
		d.stop()
		return
	}
	d.mu.Lock()
	stopping := d.stopping
	d.mu.Unlock()
	if stopping && n == 0 {
		d.stop()
	}
}

// stop makes Serve return (after closing any sessions still open).
func (d *Daemon) stop() { d.stopOnce.Do(func() { close(d.stopCh) }) }

// stopAccepting closes the listener; the socket file is removed unless it
// was replaced by someone else.
func (d *Daemon) stopAccepting() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return
	}
	d.stopping = true
	if ul, ok := d.ln.(*net.UnixListener); ok && d.socketGone.Load() {
		ul.SetUnlinkOnClose(false)
	}
	d.ln.Close()
}

// closeAll ends every open session.
func (d *Daemon) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.conns {
		c.Close()
	}
}

func (d *Daemon) handleSignal(sig syscall.Signal) {
	switch sig {
	case syscall.SIGHUP:
		d.Log.Info("SIGHUP received - re-reading configuration and flushing caches")
		if err := d.Reload(); err != nil {
			d.Log.Error("reload failed - keeping the previous configuration", "err", err)
		}
	case syscall.SIGUSR1, syscall.SIGUSR2:
		d.logStats(sig)
	case syscall.SIGTERM:
		d.termCount++
		n := d.active.Load()
		switch {
		case d.termCount == 1:
			d.Log.Info("SIGTERM received - shutting down ...")
			d.stopAccepting()
			if n == 0 {
				d.stop()
			}
		case d.termCount < 3:
			d.Log.Info(fmt.Sprintf("SIGTERM received - still %d active connections", n))
		default:
			d.Log.Info("shutdown forced")
			d.stop()
		}
	case syscall.SIGINT:
		d.Log.Info("SIGINT received - immediate shutdown")
		d.stop()
	}
}

func (d *Daemon) logStats(sig syscall.Signal) {
	st := d.srv.Stats()
	d.Log.Info(fmt.Sprintf("%s received - statistics: uptime %s, active sessions %d, sessions %d, requests %d, errors %d, busy %s",
		sig, st.Uptime, st.SessionsActive, st.SessionsTotal, st.Requests, st.Errors, st.Busy.Round(time.Millisecond)))
}

// Reload re-reads the configuration (SIGHUP, RELOADDIRMNGR). On error the
// previous configuration stays in effect.
func (d *Daemon) Reload() error {
	d.reload.Lock()
	defer d.reload.Unlock()
	if d.Notify != nil {
		d.Notify(daemon.SdNotifyReloading)
		defer d.Notify(daemon.SdNotifyReady)
	}
	l, err := config.Load(d.args)
	if err != nil {
		return fmt.Errorf("re-reading configuration: %w", err)
	}
	if l.ConfigRead {
		d.Log.Info("reading options from '" + l.ConfigFile + "'")
	}
	for _, w := range l.Warnings {
		d.Log.Warn(w)
	}
	if l.Opts.LogFile != d.out.Name() {
		if err := d.out.OpenFile(l.Opts.LogFile, d.stderr); err != nil {
			d.Log.Error("cannot switch the log file", "err", err)
		}
	}
	d.applyLevel(l.Opts)
	d.loaded = l
	if d.live != nil {
		if err := d.live.Reload(l); err != nil {
			d.Log.Error("reload failed - keeping the previous services", "err", err)
		}
	}
	return nil
}

// Shutdown implements server.Control for KILLDIRMNGR: stop accepting now and
// exit when the calling session ends.
func (d *Daemon) Shutdown() {
	d.killAfter.Store(true)
	d.stopAccepting()
}

// watchSocket stops the daemon when its socket file is removed or
// replaced, as GnuPG's dirmngr does.
func (d *Daemon) watchSocket(path string, done <-chan struct{}) {
	// A socket file already gone when the watch starts was removed after
	// Listen created it (e.g. right after --daemon returned): stop too.
	orig, origErr := os.Lstat(path)
	every(time.Second, done, func() bool {
		st, err := os.Lstat(path)
		if origErr == nil && err == nil && os.SameFile(orig, st) {
			return true
		}
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if stopping {
			return false
		}
		d.socketGone.Store(true)
		d.Log.Info("socket file has been removed - shutting down")
		d.stopAccepting()
		if d.active.Load() == 0 {
			d.stop()
		}
		return false
	})
}

func (d *Daemon) watchdog(interval time.Duration, done <-chan struct{}) {
	every(interval, done, func() bool {
		d.Notify(daemon.SdNotifyWatchdog)
		return true
	})
}

// every calls fn at each interval until fn returns false or done closes.
func every(interval time.Duration, done <-chan struct{}, fn func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if !fn() {
				return
			}
		}
	}
}
