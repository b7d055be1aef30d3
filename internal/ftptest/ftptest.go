// Package ftptest is a minimal anonymous FTP server for tests: it serves
// files from memory over extended passive mode (EPSV, RETR) on loopback.
package ftptest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Server serves Files (path → content). Like a real server it transfers
// in ASCII mode (LF sent as CR LF) until the client sends TYPE I.
type Server struct {
	Addr       string // host:port of the control connection
	ln         net.Listener
	mu         sync.Mutex
	files      map[string][]byte
	log        []string
	noPassword bool
	wg         sync.WaitGroup
}

// SetNoPassword makes the server answer USER with 230 (logged in, no
// password needed) instead of 331.
func (s *Server) SetNoPassword(v bool) {
	s.mu.Lock()
	s.noPassword = v
	s.mu.Unlock()
}

// Commands returns the commands received so far, in order, over all
// sessions.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// New starts a server on 127.0.0.1.
func New() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ftptest: %w", err)
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln, files: map[string][]byte{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Put publishes content at path.
func (s *Server) Put(path string, content []byte) {
	s.mu.Lock()
	s.files[path] = content
	s.mu.Unlock()
}

// Close stops the server and waits for the sessions to end (each ends
// when its client disconnects, or after a minute of silence).
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(c)
		}()
	}
}

// session is one control connection's state.
type session struct {
	s      *Server
	c      net.Conn
	cwd    string
	binary bool
	active string       // PORT address for active mode
	data   net.Listener // passive mode listener
}

func (ss *session) reply(format string, args ...any) { fmt.Fprintf(ss.c, format+"\r\n", args...) }

func (s *Server) session(c net.Conn) {
	defer c.Close()
	ss := &session{s: s, c: c, cwd: "/"}
	defer func() {
		if ss.data != nil {
			ss.data.Close()
		}
	}()
	r := bufio.NewReader(c)
	ss.reply("220 ftptest ready")
	for {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.log = append(s.log, line)
		noPassword := s.noPassword
		s.mu.Unlock()
		cmd, arg, _ := strings.Cut(line, " ")
		if !ss.handle(strings.ToUpper(cmd), arg, noPassword) {
			return
		}
	}
}

// handle answers one command; false ends the session.
func (ss *session) handle(cmd, arg string, noPassword bool) bool {
	switch cmd {
	case "USER":
		if noPassword {
			ss.reply("230 logged in, no password needed")
		} else {
			ss.reply("331 password please")
		}
	case "PASS":
		ss.reply("230 logged in")
	case "TYPE":
		ss.binary = strings.EqualFold(arg, "I")
		ss.reply("200 type set")
	case "SYST":
		ss.reply("215 UNIX Type: L8")
	case "PWD":
		ss.reply("257 \"%s\"", ss.cwd)
	case "CWD":
		ss.cwd = ss.path(arg)
		ss.reply("250 ok")
	case "PORT":
		ss.port(arg)
	case "PASV", "EPSV":
		ss.passive(cmd)
	case "RETR":
		ss.retr(arg)
	case "QUIT":
		ss.reply("221 bye")
		return false
	default:
		ss.reply("502 not implemented")
	}
	return true
}

func (ss *session) path(arg string) string {
	if strings.HasPrefix(arg, "/") {
		return arg
	}
	return strings.TrimSuffix(ss.cwd, "/") + "/" + arg
}

func (ss *session) port(arg string) {
	f := strings.Split(arg, ",")
	if len(f) != 6 {
		ss.reply("501 bad PORT")
		return
	}
	var p1, p2 int
	fmt.Sscan(f[4], &p1)
	fmt.Sscan(f[5], &p2)
	ss.active = fmt.Sprintf("%s.%s.%s.%s:%d", f[0], f[1], f[2], f[3], p1<<8|p2)
	ss.reply("200 PORT ok")
}

func (ss *session) passive(cmd string) {
	if ss.data != nil {
		ss.data.Close()
	}
	var err error
	ss.data, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ss.data = nil
		ss.reply("425 cannot open data connection")
		return
	}
	p := ss.data.Addr().(*net.TCPAddr).Port
	if cmd == "PASV" {
		ss.reply("227 Entering Passive Mode (127,0,0,1,%d,%d)", p>>8, p&0xff)
	} else {
		ss.reply("229 Entering Extended Passive Mode (|||%d|)", p)
	}
}

func (ss *session) retr(arg string) {
	arg = ss.path(arg)
	ss.s.mu.Lock()
	content, ok := ss.s.files[arg]
	ss.s.mu.Unlock()
	if !ok || (ss.data == nil && ss.active == "") {
		ss.reply("550 %s: no such file", arg)
		return
	}
	ss.reply("150 opening data connection")
	var dc net.Conn
	var err error
	if ss.active != "" {
		dc, err = net.Dial("tcp", ss.active)
		ss.active = ""
	} else {
		dc, err = ss.data.Accept()
	}
	if err != nil {
		ss.reply("425 no data connection")
		return
	}
	if !ss.binary {
		content = bytes.ReplaceAll(content, []byte("\n"), []byte("\r\n"))
	}
	dc.Write(content)
	dc.Close()
	ss.reply("226 transfer complete")
}
