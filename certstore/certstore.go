// Package certstore is dirmngr's in-memory certificate cache: trusted root
// certificates (trusted-certs directories), extra certificates
// (extra-certs directories) and certificates learned from clients
// (INQUIRE answers, CACHECERT). Certificates are found by fingerprint,
// subject, issuer+serial and subject key identifier.
package certstore

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dirmngr/dirmngr/certid"
)

// Source says where a certificate came from.
type Source int

// Certificate sources.
const (
	Learned Source = iota // from a client
	Extra                 // extra-certs directory
	Trusted               // trusted-certs directory: a trust anchor
)

// Entry is one stored certificate.
type Entry struct {
	Cert    *x509.Certificate
	Fpr     string // SHA-1, 40 uppercase hex
	Subject string // libksba DN
	Issuer  string
	Serial  []byte
	Source  Source
}

// Bounds of the certificates learned from clients: the oldest learned ones
// are dropped beyond MaxLearned certificates or MaxLearnedBytes of DER (a
// parsed certificate takes about three times its DER size in memory).
const (
	MaxLearned      = 10000
	MaxLearnedBytes = 16 << 20
)

// Store is safe for concurrent use. Entries are never modified once
// stored: a change (a more trusted source) stores a new Entry.
type Store struct {
	mu           sync.RWMutex
	byFpr        map[string]*Entry
	bySubject    map[string][]*Entry
	bySKI        map[string][]*Entry
	learned      []string // fingerprints in insertion order
	learnedBytes int      // DER bytes of the entries whose Source is Learned
}

// New returns an empty store.
func New() *Store {
	s := &Store{}
	s.reset()
	return s
}

func (s *Store) reset() {
	s.byFpr = map[string]*Entry{}
	s.bySubject = map[string][]*Entry{}
	s.bySKI = map[string][]*Entry{}
	s.learned = nil
	s.learnedBytes = 0
}

// ParseCert parses a DER or PEM certificate.
func ParseCert(data []byte) (*x509.Certificate, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		data = blk.Bytes
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("certstore: parsing certificate: %w", err)
	}
	return c, nil
}

// Add stores cert from src. It returns the entry and whether it was new;
// an existing certificate is upgraded to a more trusted source.
func (s *Store) Add(cert *x509.Certificate, src Source) (*Entry, bool, error) {
	fpr := certid.Fingerprint(cert.Raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byFpr[fpr]; ok {
		if src > e.Source {
			e = s.upgradeLocked(e, src)
		}
		return e, false, nil
	}
	subj, err := certid.DN(cert.RawSubject)
	if err != nil {
		return nil, false, fmt.Errorf("certstore: subject: %w", err)
	}
	iss, err := certid.DN(cert.RawIssuer)
	if err != nil {
		return nil, false, fmt.Errorf("certstore: issuer: %w", err)
	}
	serial, err := certid.RawSerial(cert)
	if err != nil {
		return nil, false, err
	}
	e := &Entry{Cert: cert, Fpr: fpr, Subject: subj, Issuer: iss, Serial: serial, Source: src}
	s.byFpr[fpr] = e
	s.bySubject[subj] = append(s.bySubject[subj], e)
	if len(cert.SubjectKeyId) > 0 {
		k := string(cert.SubjectKeyId)
		s.bySKI[k] = append(s.bySKI[k], e)
	}
	if src == Learned {
		s.learned = append(s.learned, fpr)
		s.learnedBytes += len(cert.Raw)
		for len(s.learned) > 0 && (len(s.learned) > MaxLearned || s.learnedBytes > MaxLearnedBytes) {
			s.removeLocked(s.learned[0])
			s.learned = s.learned[1:]
		}
	}
	return e, true, nil
}

// upgradeLocked replaces e by a copy with the more trusted source src.
func (s *Store) upgradeLocked(e *Entry, src Source) *Entry {
	n := *e
	n.Source = src
	if e.Source == Learned {
		s.learnedBytes -= len(e.Cert.Raw)
	}
	s.byFpr[e.Fpr] = &n
	replace(s.bySubject[e.Subject], e, &n)
	if k := string(e.Cert.SubjectKeyId); k != "" {
		replace(s.bySKI[k], e, &n)
	}
	return &n
}

func replace(list []*Entry, old, n *Entry) {
	for i, x := range list {
		if x == old {
			list[i] = n
		}
	}
}

func (s *Store) removeLocked(fpr string) {
	e, ok := s.byFpr[fpr]
	if !ok || e.Source != Learned {
		return
	}
	s.learnedBytes -= len(e.Cert.Raw)
	delete(s.byFpr, fpr)
	s.bySubject[e.Subject] = without(s.bySubject[e.Subject], e)
	if k := string(e.Cert.SubjectKeyId); k != "" {
		s.bySKI[k] = without(s.bySKI[k], e)
	}
}

func without(list []*Entry, e *Entry) []*Entry {
	out := list[:0]
	for _, x := range list {
		if x != e {
			out = append(out, x)
		}
	}
	return out
}

// ByFingerprint returns the certificate with the SHA-1 fingerprint fpr
// (hex, any case).
func (s *Store) ByFingerprint(fpr string) *Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byFpr[strings.ToUpper(fpr)]
}

// BySubject returns the certificates whose subject DN string is dn.
func (s *Store) BySubject(dn string) []*Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Entry(nil), s.bySubject[dn]...)
}

// BySKI returns the certificates with subject key identifier ski, optionally
// restricted to subject dn ("" = any).
func (s *Store) BySKI(ski []byte, dn string) []*Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Entry
	for _, e := range s.bySKI[string(ski)] {
		if dn == "" || e.Subject == dn {
			out = append(out, e)
		}
	}
	return out
}

// ByIssuerSerial returns the certificate issued by issuer DN with the
// given serial (DER content octets).
func (s *Store) ByIssuerSerial(issuer string, serial []byte) *Entry {
	if es := s.filter(func(e *Entry) bool { return e.Issuer == issuer && bytes.Equal(e.Serial, serial) }); len(es) > 0 {
		return es[0]
	}
	return nil
}

// ByIssuer returns all certificates issued by issuer DN.
func (s *Store) ByIssuer(issuer string) []*Entry {
	return s.filter(func(e *Entry) bool { return e.Issuer == issuer })
}

// filter returns the entries for which keep is true.
func (s *Store) filter(keep func(*Entry) bool) []*Entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Entry
	for _, e := range s.byFpr {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Len returns the number of certificates per source.
func (s *Store) Len() (learned, extra, trusted int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.byFpr {
		switch e.Source {
		case Learned:
			learned++
		case Extra:
			extra++
		case Trusted:
			trusted++
		}
	}
	return
}

// LoadDir adds every *.crt, *.der and *.pem file of dir with source src.
// Unreadable or unparsable files are logged and skipped; a missing
// directory is not an error.
func (s *Store) LoadDir(dir string, src Source, log *slog.Logger) int {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			log.Warn("can't read certificate directory", "dir", dir, "err", err)
		}
		return 0
	}
	n := 0
	for _, de := range ents {
		name := de.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if de.IsDir() || (ext != ".crt" && ext != ".der" && ext != ".pem") {
			continue
		}
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			log.Warn("can't read certificate", "file", p, "err", err)
			continue
		}
		cert, err := ParseCert(data)
		if err != nil {
			log.Warn("can't parse certificate", "file", p, "err", err)
			continue
		}
		if _, _, err := s.Add(cert, src); err != nil {
			log.Warn("can't store certificate", "file", p, "err", err)
			continue
		}
		n++
	}
	log.Info("certificates loaded", "dir", dir, "count", n)
	return n
}

// IsSelfSigned reports whether cert's subject equals its issuer and it
// verifies with its own key.
func IsSelfSigned(cert *x509.Certificate) bool {
	return bytes.Equal(cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(cert) == nil
}

// BySource returns the certificates from one source.
func (s *Store) BySource(src Source) []*Entry {
	return s.filter(func(e *Entry) bool { return e.Source == src })
}
