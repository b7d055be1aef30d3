// Package flight is the project's one single-flight helper: concurrent
// calls with the same key share one execution (CRL downloads per URL, OCSP
// queries per certificate). Unlike golang.org/x/sync/singleflight, the
// leader runs the work on its own goroutine (it may use its caller's
// connection), followers stop waiting when their context ends, and a leader
// that has to wait on something only it can provide (its client's answer to
// an INQUIRE) can release its followers, which then do their own work, so
// one stalled client never holds others.
package flight

import (
	"context"
	"errors"
	"sync"
)

// ErrReleased is returned to followers when the leader released them (see
// Do); they should do the work themselves.
var ErrReleased = errors.New("flight: the shared call waits on its leader's client")

// Group holds the calls in flight. The zero Group is ready to use.
type Group[V any] struct {
	mu    sync.Mutex
	calls map[string]*call[V]
}

type call[V any] struct {
	done     chan struct{}
	released chan struct{}
	once     sync.Once
	val      V
	err      error
}

// Do runs fn for key unless a call for key is in flight, in which case it
// waits for that call's result. fn runs on the calling goroutine; it gets
// a release function to call when it is about to wait on something only
// its own caller can provide: waiting followers then get ErrReleased, and
// later callers for key no longer join. shared reports whether the result
// came from another caller's fn. A follower whose ctx ends gets ctx.Err().
func (g *Group[V]) Do(ctx context.Context, key string, fn func(release func()) (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call[V]{}
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
			return c.val, true, c.err
		case <-c.released:
			return v, false, ErrReleased
		case <-ctx.Done():
			return v, false, ctx.Err()
		}
	}
	c := &call[V]{done: make(chan struct{}), released: make(chan struct{})}
	g.calls[key] = c
	g.mu.Unlock()
	release := func() {
		c.once.Do(func() {
			g.mu.Lock()
			if g.calls[key] == c {
				delete(g.calls, key)
			}
			g.mu.Unlock()
			close(c.released)
		})
	}
	defer func() {
		g.mu.Lock()
		if g.calls[key] == c {
			delete(g.calls, key)
		}
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn(release)
	return c.val, false, c.err
}
