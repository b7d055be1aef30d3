package revocation

import (
	"context"
	"errors"

	"github.com/dirmngr/dirmngr/internal/flight"
)

// Flights shares CRL downloads between concurrent requests for the same
// URL. The request doing the shared work (the leader) may have to ask its
// client (SENDCERT, ISTRUSTED) to verify the CRL, and a client can be slow
// or never answer: from the moment the leader asks its client, the others
// stop waiting for it and do their own work with their own clients, so no
// client can stall another.
type Flights struct{ g flight.Group[struct{}] }

// NewFlights returns an empty set of flights.
func NewFlights() *Flights { return &Flights{} }

// do runs work once for concurrent callers of key; see Flights.
func (f *Flights) do(ctx context.Context, key string, req *Request, work func(*Request) error) error {
	_, _, err := f.g.Do(ctx, key, func(release func()) (struct{}, error) {
		lreq := *req
		if req.Asker != nil {
			lreq.Asker = releasingAsker{req.Asker, release}
		}
		return struct{}{}, work(&lreq)
	})
	if errors.Is(err, flight.ErrReleased) {
		return work(req)
	}
	return err
}

// releasingAsker releases the flight's followers before every inquiry.
type releasingAsker struct {
	Asker
	release func()
}

func (a releasingAsker) SendTarget(ctx context.Context) ([]byte, error) {
	a.release()
	return a.Asker.SendTarget(ctx)
}

func (a releasingAsker) SendCert(ctx context.Context, pattern string) ([]byte, error) {
	a.release()
	return a.Asker.SendCert(ctx, pattern)
}

func (a releasingAsker) SendCertSKI(ctx context.Context, keyid []byte, subject string) ([]byte, error) {
	a.release()
	return a.Asker.SendCertSKI(ctx, keyid, subject)
}

func (a releasingAsker) IsTrusted(ctx context.Context, fpr string) bool {
	a.release()
	return a.Asker.IsTrusted(ctx, fpr)
}
