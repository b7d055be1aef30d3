// Package ftptest is a minimal anonymous FTP server for tests: it serves
// files from memory over extended passive mode (EPSV, RETR) on loopback.
package ftptest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
)

// Server serves Files (path → content).
type Server struct {
	Addr  string // host:port of the control connection
	ln    net.Listener
	mu    sync.Mutex
	files map[string][]byte
	wg    sync.WaitGroup
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

// Close stops the server.
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
		go s.session(c)
	}
}

func (s *Server) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	reply("220 ftptest ready")
	cwd := "/"
	active := "" // PORT address for active mode
	var data net.Listener
	defer func() {
		if data != nil {
			data.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			reply("331 password please")
		case "PASS":
			reply("230 logged in")
		case "TYPE":
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
		case "PASV":
			if data != nil {
				data.Close()
			}
			data, err = net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				reply("425 cannot open data connection")
				continue
			}
			p := data.Addr().(*net.TCPAddr).Port
			reply("227 Entering Passive Mode (127,0,0,1,%d,%d)", p>>8, p&0xff)
		case "EPSV":
			if data != nil {
				data.Close()
			}
			data, err = net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				reply("425 cannot open data connection")
				continue
			}
			reply("229 Entering Extended Passive Mode (|||%d|)", data.Addr().(*net.TCPAddr).Port)
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
