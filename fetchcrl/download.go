package fetchcrl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dirmngr/dirmngr/fetch"
	"github.com/dirmngr/dirmngr/gpgerr"
)

// fetched is what one retrieval of an index produced.
type fetched struct {
	raw                 *body // downloaded bytes (state b64data)
	source              string
	lastMod, freshUntil int64
	etag                string
}

// cached returns the state's data when it is still fresh (fetch-crl's
// no-network shortcut).
func (t *taRun) cached(i int) (fetched, bool) {
	st := t.states[i]
	now := t.r.Now().Unix()
	fresh, next := st.int64("freshuntil"), st.int64("nextupdate")
	if t.set.NoCache || fresh <= now || (next != 0 && next < now) || next < fresh || !t.data[i].present() {
		return fetched{}, false
	}
	b, err := t.data[i].decode(t.s.Output)
	if err != nil {
		return fetched{}, false
	}
	t.keep(b)
	t.log.Verbose(3, "Using cached content for %s index %d", t.a.Alias, i)
	return fetched{raw: b, source: st["sourceurl"], lastMod: st.int64("lastmod"), freshUntil: fresh, etag: st["etag"]}, true
}

// download tries prepend_url, the anchor's URLs and postpend_url in order;
// the first that yields data wins. A conditional GET replaces fetch-crl's
// HEAD + GET when the state has validators.
func (t *taRun) download(ctx context.Context, i int, urls []string) (fetched, bool) {
	tokens := t.tokens(i)
	var all []string
	if p := t.set.PrependURL; p != "" {
		all = append(all, expand(p, tokens))
	}
	for _, u := range urls {
		all = append(all, expand(u, tokens))
	}
	if p := t.set.PostpendURL; p != "" {
		all = append(all, expand(p, tokens))
	}
	for _, u := range all {
		t.log.Verbose(3, "Downloading data from %s", u)
		var got fetched
		var err error
		switch {
		case strings.HasPrefix(strings.ToLower(u), "file://"):
			got, err = t.readFileURL(u)
			if err != nil {
				t.log.Verbose(2, "%v", err)
				continue
			}
		default:
			got, err = t.get(ctx, u, i)
			if err != nil {
				t.log.Verbose(0, "Download error %s: %s", u, err)
				continue
			}
		}
		if got.raw != nil && got.raw.size > 0 {
			return got, true
		}
	}
	return fetched{}, false
}

// readFileURL reads a file:// URL (never cached; lastmod is the file's
// mtime).
func (t *taRun) readFileURL(u string) (fetched, error) {
	p := strings.TrimPrefix(u[len("file://"):], "localhost")
	f, err := os.Open(p)
	if err != nil {
		return fetched{}, fmt.Errorf("Cannot read %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fetched{}, fmt.Errorf("Cannot read %s: %w", p, err)
	}
	b, err := spool(t.s.Output, f)
	if err != nil {
		return fetched{}, fmt.Errorf("Cannot read %s: %s", p, shortNetError(err))
	}
	t.keep(b)
	return fetched{raw: b, source: u, lastMod: fi.ModTime().Unix(), freshUntil: t.r.Now().Unix()}, nil
}

// maxCRLBytes bounds one download.
const maxCRLBytes = 512 << 20

// fetcher builds the HTTP/FTP client for URL u from the anchor's settings.
func (t *taRun) fetcher(u string) *fetch.Fetcher {
	proxy := t.set.HTTPProxy
	if strings.HasPrefix(strings.ToLower(u), "https:") && t.set.HTTPSProxy != "" && !strings.EqualFold(proxy, "ENV") {
		proxy = t.set.HTTPSProxy
	}
	timeout := time.Duration(t.set.HTTPTimeout) * time.Second
	cfg := fetch.Config{Timeout: timeout, ConnectTimeout: timeout, MaxBody: maxCRLBytes, UserAgent: t.set.UserAgent}
	if cfg.UserAgent == "" {
		cfg.UserAgent = fmt.Sprintf("fetch-crl/%s (Go fetch-crl; %s)", t.s.Version, t.s.Packager)
	}
	if strings.EqualFold(proxy, "ENV") {
		cfg.HonorEnvProxy = true
	} else {
		cfg.Proxy = proxy
	}
	return fetch.New(cfg)
}

// statusError is a server's answer, printed as its status line.
type statusError struct{ status string }

func (e *statusError) Error() string { return e.status }

// downloadError shortens a fetch error of URL u to what fetch-crl (LWP)
// prints: the status line, "Can't connect to host:port (cause)", or
// "timed out after Ns".
func (t *taRun) downloadError(u string, err error) error {
	var se *fetch.StatusError
	if errors.As(err, &se) {
		return &statusError{se.Status}
	}
	var te *fetch.TransportError
	if errors.As(err, &te) {
		cause := te.Cause
		if te.Code == gpgerr.ErrNoName {
			cause = "Name or service not known" // getaddrinfo's words, as LWP prints them
		}
		switch {
		case te.Connect:
			return fmt.Errorf("Can't connect to %s (%s)", hostPort(u), cause)
		case te.Code == gpgerr.ErrTimeout:
			return fmt.Errorf("timed out after %ds", t.set.HTTPTimeout)
		}
		return errors.New(cause)
	}
	return errors.New(shortNetError(err))
}

// hostPort is the host:port LWP names for u (the scheme's default port
// when the URL has none).
func hostPort(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return u
	}
	if pu.Port() != "" {
		return pu.Host
	}
	port := map[string]string{"http": "80", "https": "443", "ftp": "21"}[strings.ToLower(pu.Scheme)]
	return net.JoinHostPort(pu.Hostname(), port)
}

// get retrieves an http(s) or ftp URL, conditionally when the state has
// validators.
func (t *taRun) get(ctx context.Context, u string, i int) (fetched, error) {
	f := t.fetcher(u)
	st := t.states[i]
	if strings.HasPrefix(strings.ToLower(u), "ftp:") {
		b, err := t.getFTP(ctx, f, u)
		if err != nil {
			return fetched{}, t.downloadError(u, err)
		}
		now := t.r.Now().Unix()
		return fetched{raw: b, source: u, lastMod: now, freshUntil: now}, nil
	}
	var prev *fetch.Validators
	if t.data[i].present() && (st["lastmod"] != "" || st["etag"] != "") {
		prev = &fetch.Validators{ETag: st["etag"]}
		if lm := st.int64("lastmod"); lm > 0 {
			prev.LastModified = time.Unix(lm, 0).UTC().Format(http.TimeFormat)
		}
	}
	hdr := http.Header{}
	if t.s.CacheControl != "" {
		hdr.Set("Cache-Control", "max-age="+t.s.CacheControl)
	}
	resp, err := f.GetWithHeaders(ctx, u, prev, hdr)
	if err != nil {
		return fetched{}, t.downloadError(u, err)
	}
	defer resp.Body.Close()
	now := t.r.Now()
	got := fetched{source: u, etag: resp.Validators.ETag, freshUntil: freshUntil(resp.Header, now), lastMod: now.Unix()}
	if lm, err := http.ParseTime(resp.Validators.LastModified); err == nil {
		got.lastMod = lm.Unix()
	}
	if resp.NotModified {
		t.log.Verbose(4, "Not modified since the last retrieval, using cache")
		if got.raw, err = t.data[i].decode(t.s.Output); err != nil {
			return fetched{}, fmt.Errorf("cached data unreadable: %v", err)
		}
		t.keep(got.raw)
		if st["etag"] != "" && got.etag == "" {
			got.etag = st["etag"]
		}
		return got, nil
	}
	if got.raw, err = spool(t.s.Output, resp.Body); err != nil {
		return fetched{}, errors.New(shortNetError(err))
	}
	t.keep(got.raw)
	return got, nil
}

// getFTP spools an ftp:// download.
func (t *taRun) getFTP(ctx context.Context, f *fetch.Fetcher, u string) (*body, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(f.GetFTPTo(ctx, u, pw)) }()
	defer pr.Close()
	b, err := spool(t.s.Output, pr)
	if err != nil {
		return nil, err
	}
	return t.keep(b), nil
}

func shortNetError(err error) string {
	switch gpgerr.CodeOf(err) {
	case gpgerr.ErrTimeout:
		return "timed out"
	case gpgerr.ErrTooLarge:
		return "response too large"
	}
	var te *fetch.TransportError
	if errors.As(err, &te) {
		if te.Connect {
			return "Can't connect (" + te.Cause + ")"
		}
		return te.Cause
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "dial") {
		return "Can't connect (" + msg[i+2:] + ")"
	}
	return msg
}

// freshUntil follows LWP's fresh_until(heuristic_expiry => 0): max-age or
// Expires, else now.
func freshUntil(h http.Header, now time.Time) int64 {
	for _, d := range strings.Split(h.Get("Cache-Control"), ",") {
		d = strings.TrimSpace(d)
		if v, ok := strings.CutPrefix(strings.ToLower(d), "max-age="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				age, _ := strconv.ParseInt(h.Get("Age"), 10, 64) // no Age header: 0
				return now.Unix() + n - age
			}
		}
	}
	if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
		if date, err := http.ParseTime(h.Get("Date")); err == nil {
			return now.Unix() + int64(exp.Sub(date).Seconds())
		}
		return exp.Unix()
	}
	return now.Unix()
}

// downloadFailed reports that every URL of index i failed, as a warning
// within the aging tolerance and an error after it.
func (t *taRun) downloadFailed(i int) {
	idx := ""
	if i > 0 {
		idx = fmt.Sprintf(" [%d]", i)
	}
	t.log.Verbose(1, "CRL retrieval for %s%s failed from all URLs", t.a.Alias, idx)
	tol := int64(t.set.AgingTolerance)
	mtime := t.states[i].int64("mtime")
	now := t.r.Now().Unix()
	switch {
	case tol > 0 && now-mtime < 3600*tol:
		left := (3600*tol + mtime - now) / 3600
		t.log.Warn("CRL retrieval for %s%s failed, %d left of %dh, retry later.", t.a.Alias, idx, left, tol)
	case tol > 0:
		t.log.RetrErr("CRL retrieval for %s%s failed. %dh grace expired. CRL not updated", t.a.Alias, idx, tol)
	default:
		t.log.RetrErr("CRL retrieval for %s%s failed, CRL not updated", t.a.Alias, idx)
	}
	t.r.count(0, 0, 1)
}
