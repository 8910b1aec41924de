package replicaset

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is a real NATS server with JetStream (the nats-server module, embedded), its streams in
// a temporary folder: what the set's events go through (Config.NATSURL).
type NATS struct {
	srv *server.Server
	dir string
	// URL is where clients connect.
	URL string
}

// StartNATS starts a server on addr (host:port; port 0 for one of the kernel's choice).
func StartNATS(addr string) (*NATS, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("NATS address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("NATS address %q: %w", addr, err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	dir, err := os.MkdirTemp("", "replicaset-nats-")
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(&server.Options{ServerName: "replicaset", Host: host, Port: p, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("NATS did not start on %s", addr)
	}
	return &NATS{srv: srv, dir: dir, URL: "nats://" + srv.Addr().String()}, nil
}

// Shutdown stops the server and removes its streams.
func (n *NATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	_ = os.RemoveAll(n.dir)
}
