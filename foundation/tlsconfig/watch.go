package tlsconfig

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/credentials"
)

// Watcher keeps the TLS configurations of a process current with their PEM files. Certificates
// are renewed before they expire (cert-manager at two thirds of their life), and Kubernetes
// swaps a mounted Secret's files in place; a process that read them once at start-up would
// serve the old ones until they expired. Reload reads the files again and, when their contents
// changed, builds the configuration anew; the gRPC credentials of Server and Client use the
// current configuration for each new handshake (connections already open keep theirs).
//
// Files that do not build, or hold a certificate outside its validity (expired, or not valid
// yet), are refused: the error is logged at ERROR and the last good configuration stays. The
// watcher is a prometheus.Collector of each file's expiry time.
//
// The standard library offers the callbacks (GetConfigForClient), grpc-go's pemfile provider a
// reloading store; neither refuses an expired renewal or reports expiry, hence this type.
type Watcher struct {
	log *slog.Logger

	mu      sync.Mutex
	sources []*source
}

// NewWatcher returns a Watcher that logs to log.
func NewWatcher(log *slog.Logger) *Watcher {
	return &Watcher{log: log}
}

// source is one configuration the watcher keeps current.
type source struct {
	use       string // the metric's label: what the configuration is for
	certFiles []string
	keyFiles  []string // read with the certificates, so that a pair changes together
	caFiles   []string
	build     func(pems map[string][]byte) (*tls.Config, error)

	current atomic.Pointer[tls.Config]
	// Guarded by Watcher.mu.
	sum         [sha256.Size]byte
	expiry      map[string]time.Time // by file: a leaf's earliest, a CA bundle's latest
	expiredSeen bool                 // the current configuration's expiry has been logged
}

// Server returns gRPC server credentials for f, named use in the metric and the logs, or nil
// when f configures no TLS.
func (w *Watcher) Server(use string, f ServerFiles) (credentials.TransportCredentials, error) {
	if !f.Enabled() {
		return nil, nil
	}
	s := &source{use: use, certFiles: []string{f.Cert}, build: func(p map[string][]byte) (*tls.Config, error) {
		var ca []byte
		if f.ClientCA != "" {
			ca = p[f.ClientCA]
		}
		return serverConfig(p[f.Cert], p[f.Key], ca, f.ClientCA, f.ClientNames)
	}}
	s.keyFiles = []string{f.Key}
	if f.ClientCA != "" {
		s.caFiles = []string{f.ClientCA}
	}
	return w.add(s)
}

// Client returns gRPC client credentials for f, named use in the metric and the logs, or nil
// when f configures no TLS.
func (w *Watcher) Client(use string, f ClientFiles) (credentials.TransportCredentials, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	s := &source{use: use, caFiles: []string{f.CA}, build: func(p map[string][]byte) (*tls.Config, error) {
		var cert, key []byte
		if f.Cert != "" {
			cert, key = p[f.Cert], p[f.Key]
		}
		return clientConfig(p[f.CA], f.CA, cert, key, f.ServerName)
	}}
	if f.Cert != "" {
		s.certFiles, s.keyFiles = []string{f.Cert}, []string{f.Key}
	}
	return w.add(s)
}

// add loads s for the first time and keeps it: files that cannot be read or built are an
// error; a certificate outside its validity is logged (there is nothing better to serve).
func (w *Watcher) add(s *source) (credentials.TransportCredentials, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.load(s, time.Now(), true); err != nil {
		return nil, fmt.Errorf("%s TLS: %w", s.use, err)
	}
	w.sources = append(w.sources, s)
	return reloading{s}, nil
}

// Reload reads every configuration's files again and rebuilds those that changed.
func (w *Watcher) Reload(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sources {
		if err := w.load(s, now, false); err != nil {
			w.log.Error("TLS files changed but cannot be used: keeping the configuration in use", "use", s.use, "error", err)
		}
		w.checkExpiry(s, now)
	}
}

// load reads s's files and, when they changed since the last load, validates and builds them
// and makes them current. first is the load at start-up, which keeps a configuration whose
// certificates are outside their validity (logging it) rather than none.
func (w *Watcher) load(s *source, now time.Time, first bool) error {
	pems := map[string][]byte{}
	h := sha256.New()
	for _, f := range append(append(append([]string{}, s.certFiles...), s.keyFiles...), s.caFiles...) {
		b, err := os.ReadFile(f) //nolint:gosec // an operator-configured path
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		pems[f] = b
		h.Write([]byte(f))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	if !first && sum == s.sum {
		return nil
	}
	expiry, invalid := validity(s, pems, now)
	if invalid != nil && !first {
		s.sum = sum // logged once per change of the files, not at every reload
		return invalid
	}
	cfg, err := s.build(pems)
	if err != nil {
		if !first {
			s.sum = sum
		}
		return err
	}
	if invalid != nil {
		w.log.Error("TLS certificate outside its validity", "use", s.use, "error", invalid)
		s.expiredSeen = true
	} else {
		s.expiredSeen = false
	}
	s.current.Store(cfg)
	s.sum, s.expiry = sum, expiry
	if !first {
		w.log.Info("TLS files reloaded", "use", s.use)
	}
	return nil
}

// checkExpiry logs, once, that the configuration in use has a certificate past its expiry:
// nothing renewed it in time.
func (w *Watcher) checkExpiry(s *source, now time.Time) {
	if s.expiredSeen {
		return
	}
	for _, f := range s.certFiles {
		if t := s.expiry[f]; now.After(t) {
			w.log.Error("TLS certificate in use has expired, and its files hold no renewal", "use", s.use, "file", f, "not_after", t)
			s.expiredSeen = true
			return
		}
	}
}

// validity returns each file's expiry (a certificate file's earliest, a CA bundle's latest)
// and an error when a certificate file holds a certificate outside its validity at now, or a CA
// file holds none within it.
func validity(s *source, pems map[string][]byte, now time.Time) (map[string]time.Time, error) {
	expiry := map[string]time.Time{}
	var errs []error
	for _, f := range s.certFiles {
		certs, err := parseCerts(f, pems[f])
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if t, ok := expiry[f]; !ok || c.NotAfter.Before(t) {
				expiry[f] = c.NotAfter
			}
			if now.After(c.NotAfter) {
				errs = append(errs, fmt.Errorf("%s: certificate %q expired at %s", f, c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339)))
			} else if now.Before(c.NotBefore) {
				errs = append(errs, fmt.Errorf("%s: certificate %q is not valid before %s", f, c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339)))
			}
		}
	}
	for _, f := range s.caFiles {
		certs, err := parseCerts(f, pems[f])
		if err != nil {
			return nil, err
		}
		valid := false
		for _, c := range certs {
			if c.NotAfter.After(expiry[f]) {
				expiry[f] = c.NotAfter
			}
			valid = valid || (!now.After(c.NotAfter) && !now.Before(c.NotBefore))
		}
		if !valid {
			errs = append(errs, fmt.Errorf("%s: no CA certificate is valid at %s", f, now.UTC().Format(time.RFC3339)))
		}
	}
	return expiry, errors.Join(errs...)
}

func parseCerts(file string, b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return certs, nil
}

var expiryDesc = prometheus.NewDesc("shop_tls_certificate_expiry_timestamp_seconds",
	"When the certificate in use expires, in Unix seconds, by what it is for (use) and file: a certificate file's earliest, a CA bundle's latest. Renewed files replace it when they are valid.",
	[]string{"use", "file"}, nil)

// Describe implements prometheus.Collector.
func (w *Watcher) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

// Collect implements prometheus.Collector.
func (w *Watcher) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.sources {
		for f, t := range s.expiry {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(t.Unix()), s.use, f)
		}
	}
}

// reloading are gRPC transport credentials that shake hands with the source's current
// configuration.
type reloading struct{ s *source }

func (r reloading) tls() credentials.TransportCredentials {
	return credentials.NewTLS(r.s.current.Load())
}

// ClientHandshake implements credentials.TransportCredentials.
func (r reloading) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return r.tls().ClientHandshake(ctx, authority, conn)
}

// ServerHandshake implements credentials.TransportCredentials.
func (r reloading) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return r.tls().ServerHandshake(conn)
}

// Info implements credentials.TransportCredentials.
func (r reloading) Info() credentials.ProtocolInfo { return r.tls().Info() }

// Clone implements credentials.TransportCredentials: the clone follows the same files.
func (r reloading) Clone() credentials.TransportCredentials { return r }

// OverrideServerName implements credentials.TransportCredentials (deprecated in grpc-go): the
// server name is configured (ClientFiles.ServerName).
func (reloading) OverrideServerName(string) error {
	return errors.New("tlsconfig: the server name is configured, not overridden")
}
