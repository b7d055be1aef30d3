package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	golden_ "github.com/dirmngr/dirmngr/internal/golden"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// TestMain removes the built programs afterwards.
func TestMain(m *testing.M) {
	if sock := os.Getenv(floorEnv); sock != "" {
		os.Exit(serveFloor(sock)) // the benchmarks' floor server (floor_test.go)
	}
	// Race-enabled binaries otherwise sleep a second at every exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// bin returns the path of one of this project's programs, built once per
// test run from the current source.
func bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "dirmngr-itest-bin")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command("go", "build", "-race", "-o", binDir+"/", "./cmd/...")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// requireTool returns the path of an external program. Outside CI a missing
// tool skips the test; with CI=true it fails it.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("required tool %s is not installed (run `make test-deps`)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// newHome creates a GNUPGHOME for one test. Short paths keep socket names
// within the Unix limit.
func newHome(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "dmh")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "all").Run()
		os.RemoveAll(dir)
	})
	return dir
}

var infoRE = regexp.MustCompile(`^DIRMNGR_INFO=([^:]+):(\d+):1; export DIRMNGR_INFO;$`)

// startDaemon runs `<program> --homedir home --daemon args...`, checks the
// DIRMNGR_INFO line and returns the daemon's pid. The daemon is killed (by
// that pid) when the test ends if it is still running.
func startDaemon(t testing.TB, program, home string, args ...string) int {
	t.Helper()
	cmd := exec.Command(program, append([]string{"--homedir", home, "--daemon", "--sh"}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --daemon: %v\nstderr: %s", program, err, stderr.String())
	}
	var pid int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := infoRE.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[2])
			if m[1] != filepath.Join(home, "S.dirmngr") {
				t.Errorf("DIRMNGR_INFO socket %q, want %q", m[1], filepath.Join(home, "S.dirmngr"))
			}
		}
	}
	if pid == 0 {
		t.Fatalf("no DIRMNGR_INFO line in %q (stderr %q)", out, stderr.String())
	}
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitFor(t, 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(home, "S.dirmngr"))
		return err == nil
	}, "socket to appear")
	return pid
}

// alive reports whether the process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(data, ')'); i >= 0 && i+2 < len(data) {
		return data[i+2] != 'Z'
	}
	return true
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gca runs gpg-connect-agent --dirmngr against home's socket with the given
// input lines and returns its standard output.
func gca(t testing.TB, home string, lines ...string) string {
	t.Helper()
	tool := requireTool(t, "gpg-connect-agent")
	cmd := exec.Command(tool, "--homedir", home, "--no-autostart", "--dirmngr")
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gpg-connect-agent: %v\nstderr: %s", err, stderr.String())
	}
	return string(out)
}

// golden compares got with testdata/<name>.golden (see internal/golden).
func golden(t testing.TB, name, got string) {
	t.Helper()
	golden_.Check(t, filepath.Join("testdata", name+".golden"), []byte(got))
}

// diff is a minimal line diff for test messages.
func diff(want, got string) string { return golden_.Diff(want, got) }
