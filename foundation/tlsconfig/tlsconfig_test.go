package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/foundation/tlsconfig"
	"github.com/acme/shop/foundation/tlsconfig/tlstest"
)

// serve starts a gRPC health server with the mutual TLS configuration and returns its address.
func serve(t *testing.T, f tlstest.Files, clientNames ...string) string {
	t.Helper()
	cfg, err := tlsconfig.Server(f.ServerCert, f.ServerKey, f.CA, clientNames)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func check(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_, err = healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLS(t *testing.T) {
	f := tlstest.Write(t)
	addr := serve(t, f)
	tests := []struct {
		name                   string
		ca, cert, key, srvName string
		ok                     bool
	}{
		{"client certificate from the CA", f.CA, f.ClientCert, f.ClientKey, "localhost", true},
		{"no client certificate", f.CA, "", "", "localhost", false},
		{"client certificate from another CA", f.CA, f.OtherClientCert, f.OtherClientKey, "localhost", false},
		{"server not trusted", "", f.ClientCert, f.ClientKey, "localhost", false},
		{"wrong server name", f.CA, f.ClientCert, f.ClientKey, "customers.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsconfig.Client(tt.ca, tt.cert, tt.key, tt.srvName)
			if err != nil {
				t.Fatal(err)
			}
			if err := check(t, addr, cfg); (err == nil) != tt.ok {
				t.Errorf("health check error = %v, want success %v", err, tt.ok)
			}
		})
	}
}

// TestClientNamesPinned: with client names configured, only a client certificate naming one of
// them gets in; another certificate from the same CA (another service's, or one issued for
// anything else) is refused.
func TestClientNamesPinned(t *testing.T) {
	f := tlstest.Write(t)
	addr := serve(t, f, "cart")
	tests := []struct {
		name      string
		cert, key string
		ok        bool
	}{
		{"cart's certificate", f.ClientCert, f.ClientKey, true},
		{"another name from the same CA", f.IntruderCert, f.IntruderKey, false},
		{"cart's name from another CA", f.OtherClientCert, f.OtherClientKey, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsconfig.Client(f.CA, tt.cert, tt.key, "localhost")
			if err != nil {
				t.Fatal(err)
			}
			if err := check(t, addr, cfg); (err == nil) != tt.ok {
				t.Errorf("health check error = %v, want success %v", err, tt.ok)
			}
		})
	}
	if _, err := tlsconfig.Server(f.ServerCert, f.ServerKey, "", []string{"cart"}); err == nil {
		t.Error("client names without a client CA accepted")
	}
}

func TestBadFiles(t *testing.T) {
	f := tlstest.Write(t)
	if _, err := tlsconfig.Server(f.ServerCert, f.ClientKey, "", nil); err == nil {
		t.Error("Server accepted a key that does not match the certificate")
	}
	if _, err := tlsconfig.Client(f.ServerKey, "", "", ""); err == nil {
		t.Error("Client accepted a CA file without certificates")
	}
	if _, err := tlsconfig.Client(f.CA, f.ClientCert, "", ""); err == nil {
		t.Error("Client accepted a certificate without its key")
	}
}
