package lifecycle

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrSocketInUse reports that a live daemon already listens on the socket.
var ErrSocketInUse = errors.New("socket is in use by a running dirmngr")

// Listen creates the Unix socket at path (mode 0700 in a 0700 directory).
// A live socket is never stolen: if a process accepts connections on it,
// Listen fails with ErrSocketInUse. A stale socket file is replaced.
func Listen(path string, backlog int) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating socket directory '%s': %w", dir, err)
	}
	for attempt := 0; ; attempt++ {
		ln, err := listenOnce(path)
		if err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt > 0 {
			return nil, fmt.Errorf("error binding socket to '%s': %w", path, err)
		}
		if st, serr := os.Lstat(path); serr == nil && st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("error binding socket to '%s': the file exists and is not a socket", path)
		}
		if live(path) {
			return nil, fmt.Errorf("'%s': %w", path, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket '%s': %w", path, err)
		}
	}
}

func listenOnce(path string) (*net.UnixListener, error) {
	// Create the socket with no access for others from the first moment.
	old := syscall.Umask(0o077)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o700); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// live reports whether something accepts connections on the socket path.
func live(path string) bool {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
