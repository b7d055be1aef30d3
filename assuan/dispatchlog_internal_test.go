package assuan

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// TestDispatchDebugLog: with debug logging on, every command is logged
// (its arguments unless the command hides them); with it off, a command
// costs no allocation for the log.
func TestDispatchDebugLog(t *testing.T) {
	cmds := []Command{
		{Name: "ISVALID", Handler: func(*Session, string) error { return nil }},
		{Name: "SECRET", NoLogArgs: true, Handler: func(*Session, string) error { return nil }},
	}
	for _, tc := range []struct {
		line    string
		want    string // in the debug log
		wantNot string
	}{
		{"ISVALID 12.34", `msg="<- ISVALID" session=7 args=12.34`, ""},
		{"SECRET hunter2", `msg="<- SECRET" session=7`, "hunter2"},
		{"NOP", `msg="<- NOP" session=7`, ""},
	} {
		var log bytes.Buffer
		srv := &Server{Commands: cmds, Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		s := &Session{ID: 7, srv: srv, w: bufio.NewWriter(io.Discard)}
		if err := s.dispatch(tc.line); err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if !strings.Contains(log.String(), tc.want) || (tc.wantNot != "" && strings.Contains(log.String(), tc.wantNot)) {
			t.Errorf("%s: debug log %q, want %q and not %q", tc.line, log.String(), tc.want, tc.wantNot)
		}
	}
	srv := &Server{Commands: cmds, Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	s := &Session{ID: 7, srv: srv, w: bufio.NewWriter(io.Discard)}
	if allocs := testing.AllocsPerRun(100, func() { s.dispatch("ISVALID 12.34") }); allocs > 0 {
		t.Errorf("a command costs %.1f allocations with debug logging off, want 0", allocs)
	}
}
