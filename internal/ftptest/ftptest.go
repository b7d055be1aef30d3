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

func (s *Server) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	reply("220 ftptest ready")
	cwd := "/"
	binary := false
	active := "" // PORT address for active mode
	var data net.Listener
	defer func() {
		if data != nil {
			data.Close()
		}
	}()
	for {
		c.SetReadDeadline(time.Now().Add(time.Minute))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		s.mu.Lock()
		s.log = append(s.log, strings.TrimRight(line, "\r\n"))
		noPassword := s.noPassword
		s.mu.Unlock()
		switch strings.ToUpper(cmd) {
		case "USER":
			if noPassword {
				reply("230 logged in, no password needed")
			} else {
				reply("331 password please")
			}
		case "PASS":
			reply("230 logged in")
		case "TYPE":
			binary = strings.EqualFold(arg, "I")
			reply("200 type set")
		case "SYST":
			reply("215 UNIX Type: L8")
		case "PWD":
			reply("257 \"%s\"", cwd)
		case "CWD":
			if strings.HasPrefix(arg, "/") {
				cwd = arg
			} else {
				cwd = strings.TrimSuffix(cwd, "/") + "/" + arg
			}
			reply("250 ok")
		case "PORT":
			f := strings.Split(arg, ",")
			if len(f) != 6 {
				reply("501 bad PORT")
				continue
			}
			var p1, p2 int
			fmt.Sscan(f[4], &p1)
			fmt.Sscan(f[5], &p2)
			active = fmt.Sprintf("%s.%s.%s.%s:%d", f[0], f[1], f[2], f[3], p1<<8|p2)
			reply("200 PORT ok")
		case "PASV", "EPSV":
			if data != nil {
				data.Close()
			}
			data, err = net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				reply("425 cannot open data connection")
				continue
			}
			p := data.Addr().(*net.TCPAddr).Port
			if strings.EqualFold(cmd, "PASV") {
				reply("227 Entering Passive Mode (127,0,0,1,%d,%d)", p>>8, p&0xff)
			} else {
				reply("229 Entering Extended Passive Mode (|||%d|)", p)
			}
		case "RETR":
			if !strings.HasPrefix(arg, "/") {
				arg = strings.TrimSuffix(cwd, "/") + "/" + arg
			}
			s.mu.Lock()
			content, ok := s.files[arg]
			s.mu.Unlock()
			if !ok || (data == nil && active == "") {
				reply("550 %s: no such file", arg)
				continue
			}
			reply("150 opening data connection")
			var dc net.Conn
			if active != "" {
				dc, err = net.Dial("tcp", active)
				active = ""
			} else {
				dc, err = data.Accept()
			}
			if err != nil {
				reply("425 no data connection")
				continue
			}
			if !binary {
				content = bytes.ReplaceAll(content, []byte("\n"), []byte("\r\n"))
			}
			dc.Write(content)
			dc.Close()
			reply("226 transfer complete")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}
