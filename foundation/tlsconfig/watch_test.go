package tlsconfig_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/tlsconfig"
	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

// mount is a folder laid out as kubelet mounts a Secret: each file a symlink into ..data, itself
// a symlink to a folder of the current version, which an update replaces in one rename.
type mount struct {
	t   *testing.T
	dir string
	n   int
}

func newMount(t *testing.T, files map[string][]byte) *mount {
	m := &mount{t: t, dir: t.TempDir()}
	m.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(m.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// update writes files as the next version and swaps ..data to it.
func (m *mount) update(files map[string][]byte) {
	m.n++
	version := fmt.Sprintf("..v%d", m.n)
	if err := os.Mkdir(filepath.Join(m.dir, version), 0o755); err != nil {
		m.t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(m.dir, version, name), b, 0o600); err != nil {
			m.t.Fatal(err)
		}
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		m.t.Fatal(err)
	}
}

func (m *mount) path(name string) string { return filepath.Join(m.dir, name) }

// pki is a development PKI's files, read into memory.
type pki map[string][]byte

func newPKI(t *testing.T, now time.Time) pki {
	t.Helper()
	dir := t.TempDir()
	if err := devcerts.Generate(dir, now); err != nil {
		t.Fatal(err)
	}
	p := pki{}
	for _, f := range []string{devcerts.CACert, devcerts.CustomersCert, devcerts.CustomersKey, devcerts.CartClientCert, devcerts.CartClientKey} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		p[f] = b
	}
	return p
}

func serialOf(t *testing.T, certPEM []byte) string {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// server's files (customers: its certificate and the CA of its clients) and client's (cart: the
// CA of the server and its client certificate), from PKIs: leaves from one, CA bundle of some.
func serverFiles(leaves pki, cas ...pki) map[string][]byte {
	return map[string][]byte{"tls.crt": leaves[devcerts.CustomersCert], "tls.key": leaves[devcerts.CustomersKey], "ca.crt": bundle(cas)}
}

func clientFiles(leaves pki, cas ...pki) map[string][]byte {
	return map[string][]byte{"tls.crt": leaves[devcerts.CartClientCert], "tls.key": leaves[devcerts.CartClientKey], "ca.crt": bundle(cas)}
}

func bundle(cas []pki) []byte {
	var b []byte
	for _, p := range cas {
		b = append(b, p[devcerts.CACert]...)
	}
	return b
}

// rig is a gRPC server (customers) and its client (cart), each with its own Watcher over its
// own mounted files, as in two pods.
type rig struct {
	server, client           *tlsconfig.Watcher
	serverMount, clientMount *mount
	addr                     string
	clientCreds              credentials.TransportCredentials
	lastClientSerial         atomic.Value // the client certificate the server saw last
	serverLog, clientLog     *bytes.Buffer
}

func newRig(t *testing.T, serverFiles, clientFiles map[string][]byte) *rig {
	t.Helper()
	r := &rig{serverMount: newMount(t, serverFiles), clientMount: newMount(t, clientFiles), serverLog: &bytes.Buffer{}, clientLog: &bytes.Buffer{}}
	r.server = tlsconfig.NewWatcher(slog.New(slog.NewTextHandler(r.serverLog, nil)))
	r.client = tlsconfig.NewWatcher(slog.New(slog.NewTextHandler(r.clientLog, nil)))
	s := r.serverMount
	serverCreds, err := r.server.Server("grpc_server", tlsconfig.ServerFiles{Cert: s.path("tls.crt"), Key: s.path("tls.key"), ClientCA: s.path("ca.crt"), ClientNames: []string{"cart"}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.clientMount
	r.clientCreds, err = r.client.Client("customers_client", tlsconfig.ClientFiles{CA: c.path("ca.crt"), Cert: c.path("tls.crt"), Key: c.path("tls.key"), ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(serverCreds), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if p, ok := peer.FromContext(ctx); ok {
			if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
				r.lastClientSerial.Store(info.State.PeerCertificates[0].SerialNumber.String())
			}
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	r.addr = lis.Addr().String()
	return r
}

// call checks health over a new connection (a new handshake) and returns the serial of the
// server's certificate.
func (r *rig) call(ctx context.Context) (string, error) {
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(r.clientCreds))
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return "", err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return "", fmt.Errorf("no server certificate in %T", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber.String(), nil
}

// TestWatcherRotatesUnderLoad rotates every file, the CAs included, the way an operator rolls a
// new CA (both CAs trusted, then new leaves, then the old CA dropped), each step swapped in as
// kubelet updates a Secret, under steady load of new connections and of one long-lived
// connection: not one call fails, and new handshakes use the new certificates.
func TestWatcherRotatesUnderLoad(t *testing.T) {
	now := time.Now()
	a, b := newPKI(t, now), newPKI(t, now)
	r := newRig(t, serverFiles(a, a), clientFiles(a, a))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		mu         sync.Mutex
		failures   []string
		served     int
		lastSerial string
	)
	long, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(r.clientCreds))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = long.Close() }()
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var (
					serial string
					err    error
				)
				if i == 0 { // the long-lived connection
					_, err = healthpb.NewHealthClient(long).Check(ctx, &healthpb.HealthCheckRequest{})
				} else {
					serial, err = r.call(ctx)
				}
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					failures = append(failures, err.Error())
				} else if err == nil {
					served++
					if serial != "" {
						lastSerial = serial
					}
				}
				mu.Unlock()
			}
		})
	}
	step := func(name string, serverFiles, clientFiles map[string][]byte, wantServer, wantClient string) {
		t.Helper()
		r.serverMount.update(serverFiles)
		r.clientMount.update(clientFiles)
		r.server.Reload(time.Now())
		r.client.Reload(time.Now())
		poll.Until(t, func() error {
			mu.Lock()
			defer mu.Unlock()
			if got, _ := r.lastClientSerial.Load().(string); lastSerial != wantServer || got != wantClient {
				return fmt.Errorf("%s: server certificate %s, client certificate %s; want %s and %s", name, lastSerial, got, wantServer, wantClient)
			}
			return nil
		})
	}
	step("both CAs trusted", serverFiles(a, a, b), clientFiles(a, a, b), serialOf(t, a[devcerts.CustomersCert]), serialOf(t, a[devcerts.CartClientCert]))
	step("leaves of the new CA", serverFiles(b, a, b), clientFiles(b, a, b), serialOf(t, b[devcerts.CustomersCert]), serialOf(t, b[devcerts.CartClientCert]))
	step("old CA dropped", serverFiles(b, b), clientFiles(b, b), serialOf(t, b[devcerts.CustomersCert]), serialOf(t, b[devcerts.CartClientCert]))
	// The long-lived connection still answers, with the handshake it made before the rotation.
	if _, err := healthpb.NewHealthClient(long).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("the connection opened before the rotation: %v", err)
	}
	cancel()
	wg.Wait()
	t.Logf("%d calls answered during the rotation", served)
	for _, f := range failures {
		t.Error(f)
	}
	for _, log := range []*bytes.Buffer{r.serverLog, r.clientLog} {
		if n := strings.Count(log.String(), "TLS files reloaded"); n != 3 {
			t.Errorf("%d reloads logged, want 3:\n%s", n, log)
		}
	}
}

// TestWatcherKeepsTheLastValidPair: renewed files holding an expired certificate are refused
// with an ERROR line, and the server keeps presenting the pair it had; the gauge reports the
// expiry of what is in use.
func TestWatcherKeepsTheLastValidPair(t *testing.T) {
	now := time.Now()
	good := newPKI(t, now)
	r := newRig(t, serverFiles(good, good), clientFiles(good, good))
	expired := newPKI(t, now.Add(-devcerts.LeafValidity-24*time.Hour)) // its leaves expired a day ago
	r.serverMount.update(serverFiles(expired, good))
	r.server.Reload(now)
	if log := r.serverLog.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "expired") {
		t.Errorf("server log after an expired renewal = %q, want an ERROR naming the expiry", log)
	}
	serial, err := r.call(t.Context())
	if err != nil {
		t.Fatalf("call after an expired renewal: %v", err)
	}
	if want := serialOf(t, good[devcerts.CustomersCert]); serial != want {
		t.Errorf("server presents %s after an expired renewal, want the last valid certificate %s", serial, want)
	}
	leaf := expiryOf(t, r.server, r.serverMount.path("tls.crt"))
	if d := time.Until(leaf); d < devcerts.LeafValidity-48*time.Hour || d > devcerts.LeafValidity {
		t.Errorf("gauge of the certificate in use says it expires in %s, want about %s", d, devcerts.LeafValidity)
	}
	ca := expiryOf(t, r.server, r.serverMount.path("ca.crt"))
	if d := time.Until(ca); d < devcerts.CAValidity-48*time.Hour || d > devcerts.CAValidity {
		t.Errorf("gauge of the CA says it expires in %s, want about %s", d, devcerts.CAValidity)
	}
}

// TestWatcherReportsExpiryInUse: when the certificate in use expires and no renewal came, the
// gauge shows a time in the past (the alert's cue) and one ERROR line says so.
func TestWatcherReportsExpiryInUse(t *testing.T) {
	now := time.Now()
	p := newPKI(t, now)
	r := newRig(t, serverFiles(p, p), clientFiles(p, p))
	later := now.Add(devcerts.LeafValidity + time.Hour)
	r.server.Reload(later)
	r.server.Reload(later.Add(time.Minute))
	if n := strings.Count(r.serverLog.String(), "level=ERROR"); n != 1 {
		t.Errorf("%d ERROR lines for a certificate that expired in use, want 1:\n%s", n, r.serverLog)
	}
	if got := expiryOf(t, r.server, r.serverMount.path("tls.crt")); !got.Before(later) {
		t.Errorf("gauge says %s, want a time before %s", got, later)
	}
}

// TestWatcherRefusesBrokenFiles: a key that does not match its certificate, or a file that is
// not PEM, keeps the last good configuration; at start-up it is an error.
func TestWatcherRefusesBrokenFiles(t *testing.T) {
	now := time.Now()
	p, other := newPKI(t, now), newPKI(t, now)
	r := newRig(t, serverFiles(p, p), clientFiles(p, p))
	mismatched := serverFiles(p, p)
	mismatched["tls.key"] = other[devcerts.CustomersKey]
	r.serverMount.update(mismatched)
	r.server.Reload(now)
	if _, err := r.call(t.Context()); err != nil {
		t.Errorf("call after a mismatched key was refused: %v", err)
	}
	if !strings.Contains(r.serverLog.String(), "level=ERROR") {
		t.Errorf("no ERROR for a key that does not match its certificate:\n%s", r.serverLog)
	}
	m := newMount(t, map[string][]byte{"tls.crt": []byte("not PEM"), "tls.key": p[devcerts.CustomersKey]})
	if _, err := tlsconfig.NewWatcher(slog.New(slog.DiscardHandler)).Server("grpc_server", tlsconfig.ServerFiles{Cert: m.path("tls.crt"), Key: m.path("tls.key")}); err == nil {
		t.Error("a watcher started on a certificate file that is not PEM")
	}
}

// expiryOf returns the gauge's value for file.
func expiryOf(t *testing.T, w *tlsconfig.Watcher, file string) time.Time {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(w)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(w); n == 0 {
		t.Fatal("the watcher reports no expiry")
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "file" && l.GetValue() == file {
					return time.Unix(int64(m.GetGauge().GetValue()), 0)
				}
			}
		}
	}
	t.Fatalf("no expiry reported for %s", file)
	return time.Time{}
}
