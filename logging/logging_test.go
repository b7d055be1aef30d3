package logging

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHandlerFormat(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	log := slog.New(NewHandler(&buf, "dirmngr", false, lv))
	log.Info("listening on socket", "path", "/x/S.dirmngr")
	log.Warn("odd\nvalue", "v", "a b")
	log.Debug("hidden")
	lv.Set(slog.LevelDebug)
	log.With("session", 3).WithGroup("req").Debug("cmd", "name", "GETINFO")
	want := []string{
		`dirmngr\[\d+\]: listening on socket path=/x/S.dirmngr`,
		`dirmngr\[\d+\]: WARNING: odd\\nvalue v="a b"`,
		`dirmngr\[\d+\]: DBG: cmd session=3 req.name=GETINFO`,
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines: %q", len(lines), buf.String())
	}
	for i, re := range want {
		if !regexp.MustCompile("^" + re + "$").MatchString(lines[i]) {
			t.Errorf("line %d = %q, want match %q", i, lines[i], re)
		}
	}
}

func TestTimestampsAndOutputSwitch(t *testing.T) {
	var first bytes.Buffer
	out := NewOutput(&first)
	log := slog.New(NewHandler(out, "dirmngr", true, slog.LevelInfo))
	log.Info("one")
	name := filepath.Join(t.TempDir(), "log")
	if err := out.OpenFile(name, &first); err != nil {
		t.Fatal(err)
	}
	log.Info("two")
	if err := out.OpenFile("", &first); err != nil {
		t.Fatal(err)
	}
	log.Info("three")
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	ts := `\d{4}-\d\d-\d\d \d\d:\d\d:\d\d dirmngr\[\d+\]: `
	if !regexp.MustCompile("^" + ts + "two\n$").Match(data) {
		t.Errorf("log file: %q", data)
	}
	if !regexp.MustCompile("^" + ts + "one\n" + ts + "three\n$").Match(first.Bytes()) {
		t.Errorf("first output: %q", first.String())
	}
}

func TestLevel(t *testing.T) {
	tests := []struct {
		quiet          bool
		verbose, debug int
		want           slog.Level
	}{
		{false, 0, 0, slog.LevelInfo},
		{true, 0, 0, slog.LevelWarn},
		{false, 2, 0, slog.LevelInfo},
		{true, 0, 1, slog.LevelDebug},
	}
	for _, tc := range tests {
		if got := Level(tc.quiet, tc.verbose, tc.debug); got != tc.want {
			t.Errorf("Level(%v,%d,%d) = %v, want %v", tc.quiet, tc.verbose, tc.debug, got, tc.want)
		}
	}
}

// TestLogSocket: "log-file socket://PATH" streams the lines to a listening
// Unix socket (GnuPG's watchgnupg setup); while nothing listens they go to
// the fallback, and the writer connects once a server appears.
func TestLogSocket(t *testing.T) {
	retryAfter = 0
	defer func() { retryAfter = 2 * time.Second }()
	dir, err := os.MkdirTemp("/tmp", "dmlog")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "S.log")
	var fallback bytes.Buffer
	out := NewOutput(&fallback)
	if err := out.OpenFile("socket://"+path, &fallback); err != nil {
		t.Fatalf("OpenFile socket://: %v", err)
	}
	log := slog.New(NewHandler(out, "dirmngr", true, new(slog.LevelVar)))
	log.Info("before the server")
	if !strings.Contains(fallback.String(), "before the server") || !strings.Contains(fallback.String(), "can't connect to the log server '"+path+"': no such file or directory") {
		t.Fatalf("fallback: %q", fallback.String())
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	log.Info("to watchgnupg", "n", 1)
	select {
	case l := <-got:
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d dirmngr\[\d+\]: to watchgnupg n=1\n$`).MatchString(l) {
			t.Errorf("socket got %q", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived on the log socket")
	}
	if strings.Contains(fallback.String(), "to watchgnupg") {
		t.Error("line went to the fallback although the server listened")
	}
	if err := out.OpenFile("", &fallback); err != nil {
		t.Fatal(err)
	}
}

func TestLogStreamNames(t *testing.T) {
	for _, tc := range []struct {
		name, def, network, addr string
		stream, bad              bool
	}{
		{"/var/log/dirmngr.log", "", "", "", false, false},
		{"socket:///run/S.log", "", "unix", "/run/S.log", true, false},
		{"socket://", "/h/S.log", "unix", "/h/S.log", true, false},
		{"socket://", "", "", "", true, true},
		{"tcp://127.0.0.1:4711", "", "tcp", "127.0.0.1:4711", true, false},
		{"tcp://nohost", "", "", "", true, true},
	} {
		network, addr, stream, err := parseStream(tc.name, tc.def)
		if stream != tc.stream || (err != nil) != tc.bad || network != tc.network || addr != tc.addr {
			t.Errorf("%q: %q %q %v %v", tc.name, network, addr, stream, err)
		}
	}
}

// TestDevNullDiscards: a daemon whose stderr is /dev/null (no --log-file)
// formats nothing; any other destination, and switching to and from
// /dev/null with OpenFile, keeps the handler's level.
func TestDevNullDiscards(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file := filepath.Join(t.TempDir(), "log")
	reg, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, tc := range []struct {
		name    string
		w       io.Writer
		open    string // OpenFile(open) after NewOutput ("-": none)
		enabled bool
	}{
		{"devnull", null, "-", false},
		{"regular file", reg, "-", true},
		{"buffer", &bytes.Buffer{}, "-", true},
		{"devnull, then a log file", null, file, true},
		{"a file, then /dev/null", reg, os.DevNull, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := NewOutput(tc.w)
			if tc.open != "-" {
				if err := out.OpenFile(tc.open, tc.w); err != nil {
					t.Fatal(err)
				}
				defer out.OpenFile("", tc.w)
			}
			h := NewHandler(out, "dirmngr", false, slog.LevelInfo)
			if got := h.Enabled(context.Background(), slog.LevelError); got != tc.enabled {
				t.Errorf("Enabled(error) = %v, want %v", got, tc.enabled)
			}
		})
	}
}
