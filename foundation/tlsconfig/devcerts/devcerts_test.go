package devcerts_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

func load(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", name)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if err := devcerts.Generate(dir, now); err != nil {
		t.Fatal(err)
	}
	ca := load(t, dir, devcerts.CACert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	customers := load(t, dir, devcerts.CustomersCert)
	for _, host := range []string{"customers", "localhost", "127.0.0.1"} {
		if _, err := customers.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("customers certificate for %s: %v", host, err)
		}
	}
	cart := load(t, dir, devcerts.CartClientCert)
	if _, err := cart.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("cart client certificate: %v", err)
	}
	if slices.Contains(cart.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Error("cart's client certificate may also serve")
	}
	if got := customers.NotAfter.Sub(now); got > devcerts.LeafValidity || got < devcerts.LeafValidity-2*time.Hour {
		t.Errorf("leaf validity %v, want about %v", got, devcerts.LeafValidity)
	}
	info, err := os.Stat(filepath.Join(dir, devcerts.CAKey))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("CA key permissions %v, want the owner's alone", perm)
	}
}
