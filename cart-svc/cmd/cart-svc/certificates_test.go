package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/acme/shop/foundation/poll"
	"github.com/acme/shop/foundation/service/servicetest"
	"github.com/acme/shop/foundation/tlsconfig"
	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

// TestCertificatesRenewWithoutRestart runs both services over mutual TLS on files that are then
// replaced by a new PKI (CA and every certificate), as a renewal rewrites a mounted Secret: with
// no restart, customers' and cart's gRPC ports present the new certificates and accept the new
// CA's clients, cart reports the new expiry, and once the link between them is cut, cart
// reconnects to customers with its new client certificate and serves carts again.
func TestCertificatesRenewWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := devcerts.Generate(dir, now); err != nil {
		t.Fatal(err)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	c := startCustomers(t, "sqlite", map[string]string{
		"TLS_RELOAD_INTERVAL":             "1s",
		"CUSTOMERS_GRPC_TLS_CERT":         file(devcerts.CustomersCert),
		"CUSTOMERS_GRPC_TLS_KEY":          file(devcerts.CustomersKey),
		"CUSTOMERS_GRPC_TLS_CLIENT_CA":    file(devcerts.CACert),
		"CUSTOMERS_GRPC_TLS_CLIENT_NAMES": "cart",
	})
	s := servicetest.StartOn(t, spec, "sqlite", map[string]string{
		"TLS_RELOAD_INTERVAL":            "1s",
		"CART_CUSTOMERS_ADDR":            c.grpc,
		"CART_GRPC_TLS_CERT":             file(devcerts.CartServerCert),
		"CART_GRPC_TLS_KEY":              file(devcerts.CartServerKey),
		"CART_CUSTOMERS_TLS_CA":          file(devcerts.CACert),
		"CART_CUSTOMERS_TLS_CERT":        file(devcerts.CartClientCert),
		"CART_CUSTOMERS_TLS_KEY":         file(devcerts.CartClientKey),
		"CART_CUSTOMERS_TLS_SERVER_NAME": "localhost",
	})
	h := harnessOf(t, s)
	tok := c.login("nonadmin3@email.com", demoPassword)
	if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusOK {
		t.Fatalf("GET cart before the renewal = %d %s", res.Code, res.Raw)
	}

	// The renewal: a new PKI an hour younger, moved over the old files one by one.
	renewed := t.TempDir()
	if err := devcerts.Generate(renewed, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{devcerts.CACert, devcerts.CustomersCert, devcerts.CustomersKey, devcerts.CartClientCert, devcerts.CartClientKey, devcerts.CartServerCert, devcerts.CartServerKey} {
		if err := os.Rename(filepath.Join(renewed, f), file(f)); err != nil {
			t.Fatal(err)
		}
	}
	newCA := file(devcerts.CACert)
	// customers' port presents the new certificate and takes the new CA's cart certificate.
	client, err := tlsconfig.Client(newCA, file(devcerts.CartClientCert), file(devcerts.CartClientKey), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() error { return healthCheck(c.grpc, credentials.NewTLS(client)) })
	// cart's port presents its new certificate.
	server, err := tlsconfig.Client(newCA, "", "", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, func() error { return healthCheck(s.GRPC, credentials.NewTLS(server)) })
	// cart's client to customers has the new certificate too: the gauge says so.
	want := notAfter(t, file(devcerts.CartClientCert)).Unix()
	poll.Until(t, func() error {
		res, err := http.Get(h.metrics)
		if err != nil {
			return err
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "shop_tls_certificate_expiry_timestamp_seconds{") || !strings.Contains(line, `use="customers_client"`) ||
				!strings.Contains(line, `file="`+file(devcerts.CartClientCert)+`"`) {
				continue
			}
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil && int64(v) == want {
				return nil
			}
		}
		return fmt.Errorf("cart's metrics show no customers_client certificate expiring at %d", want)
	})
	// A new connection between the services shakes hands with the renewed files on both sides.
	c.proxy.Drop()
	poll.Until(t, func() error {
		if res := h.do(http.MethodGet, "/api/v1/carts/me", tok, nil); res.Code != http.StatusOK {
			return fmt.Errorf("GET cart after the renewal = %d %s", res.Code, res.Raw)
		}
		return nil
	})
}

func healthCheck(addr string, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	return err
}

func notAfter(t *testing.T, certFile string) time.Time {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.NotAfter
}
