// Package eventstest runs a real NATS server with JetStream inside a test, on a port of its
// own, behind an address that stays the same while the server stops and starts again.
package eventstest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/acme/shop/foundation/service/servicetest"
)

// Server is an embedded NATS server with JetStream, its storage in the test's temporary folder.
type Server struct {
	t     testing.TB
	dir   string
	proxy *servicetest.Proxy
	srv   *server.Server
	// URL is where clients connect: a proxy in front of the server, so that it is the same
	// after Restart.
	URL string
}

// Start runs a server until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: filepath.Join(t.TempDir(), "jetstream"), proxy: servicetest.NewProxy(t)}
	s.URL = "nats://" + s.proxy.Addr
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server again after Stop, on a new port, with the streams it had.
func (s *Server) Start() {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: s.dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		s.t.Fatal("the NATS server did not start")
	}
	s.srv = srv
	s.proxy.Forward(srv.Addr().String())
}

// Stop stops the server: clients see it down until Start.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.proxy.Forward("")
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}
