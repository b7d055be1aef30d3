package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirmngr/dirmngr/internal/flight"
)

// TestShared: concurrent callers of one key share one execution.
func TestShared(t *testing.T) {
	var g flight.Group[int]
	var runs atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	results := make(chan int, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _, err := g.Do(context.Background(), "k", func(func()) (int, error) {
				runs.Add(1)
				<-gate
				return 42, nil
			})
			if err != nil {
				t.Error(err)
			}
			results <- v
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(gate)
	wg.Wait()
	close(results)
	for v := range results {
		if v != 42 {
			t.Errorf("result %d", v)
		}
	}
	if n := runs.Load(); n < 1 || n > 10 {
		t.Fatalf("%d runs", n)
	}
}

// TestFollowerLeaves: a follower whose context ends stops waiting; a
// released follower gets ErrReleased while the leader goes on.
func TestFollowerLeaves(t *testing.T) {
	var g flight.Group[int]
	started, release, finish := make(chan struct{}), make(chan struct{}), make(chan struct{})
	leaderDone := make(chan error, 1)
	go func() {
		_, _, err := g.Do(context.Background(), "k", func(rel func()) (int, error) {
			close(started)
			<-release
			rel()
			<-finish
			return 1, nil
		})
		leaderDone <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := g.Do(ctx, "k", func(func()) (int, error) { return 0, errors.New("ran") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled follower: %v", err)
	}
	followerDone := make(chan error, 1)
	go func() {
		_, _, err := g.Do(context.Background(), "k", func(func()) (int, error) { return 0, errors.New("ran") })
		followerDone <- err
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	// The follower is answered while the leader still runs: released (or,
	// had it come after the release, with its own work).
	select {
	case err := <-followerDone:
		if !errors.Is(err, flight.ErrReleased) && (err == nil || err.Error() != "ran") {
			t.Fatalf("released follower: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follower held by the released leader")
	}
	// After the release, a new caller runs on its own.
	if v, shared, err := g.Do(context.Background(), "k", func(func()) (int, error) { return 7, nil }); v != 7 || shared || err != nil {
		t.Fatalf("after release: %d %v %v", v, shared, err)
	}
	close(finish)
	if err := <-leaderDone; err != nil {
		t.Fatal(err)
	}
}
