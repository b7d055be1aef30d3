package assuan

import (
	"net"
	"syscall"
)

// PeerCredOf returns the credentials of the peer of a Unix socket
// connection (SO_PEERCRED); Known is false for other connections.
func PeerCredOf(c net.Conn) PeerCred {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return PeerCred{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return PeerCred{}
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil {
		return PeerCred{}
	}
	return PeerCred{Known: true, PID: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}
}
