package logging

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
