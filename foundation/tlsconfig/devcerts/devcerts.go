// Package devcerts creates a development PKI for the link between the services: a CA, a server
// certificate for customers and a client certificate for cart. It backs `make certs`; it is for
// development and docker compose on one machine, not for production, where certificates come
// from your own CA or a service mesh.
package devcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity of what Generate creates.
const (
	CAValidity   = 365 * 24 * time.Hour
	LeafValidity = 90 * 24 * time.Hour
)

// File names Generate writes into its folder.
const (
	CACert         = "ca.pem"
	CAKey          = "ca-key.pem" // never commit it: it can sign certificates the services trust
	CustomersCert  = "customers.pem"
	CustomersKey   = "customers-key.pem"
	CartClientCert = "cart.pem"
	CartClientKey  = "cart-key.pem"
	CartServerCert = "cart-server.pem"
	CartServerKey  = "cart-server-key.pem"
	// PostgresCert is a server certificate for PostgreSQL (its compose hosts, localhost and
	// 127.0.0.1), to try sslmode=verify-full with a private CA (sslrootcert=ca.pem).
	PostgresCert = "postgres.pem"
	PostgresKey  = "postgres-key.pem"
)

// Generate writes a new CA and the service certificates into dir. customers' certificate names
// the hosts it is reached as (its compose service name, localhost, 127.0.0.1); cart has a
// client certificate, naming it "cart", for its calls to customers, and a server certificate
// for its own gRPC port; PostgreSQL has a server certificate (PostgresCert).
func Generate(dir string, now time.Time) error {
	// The folder is bind-mounted into the containers, whose non-root user must enter it.
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // see above
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "shop development CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(CAValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := write(dir, CACert, CAKey, caDER, caKey, 0o600); err != nil {
		return err
	}
	leaves := []leaf{
		{CustomersCert, CustomersKey, "customers", []string{"customers", "localhost"}, loopbackIPs,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{CartClientCert, CartClientKey, "cart", []string{"cart"}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{CartServerCert, CartServerKey, "cart", []string{"cart", "localhost"}, loopbackIPs,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{PostgresCert, PostgresKey, "postgres", []string{"customers-db", "cart-db", "localhost"}, loopbackIPs,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
	}
	for _, l := range leaves {
		if err := issue(dir, ca, caKey, l, now); err != nil {
			return err
		}
	}
	return nil
}

var loopbackIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}

// leaf is a certificate Generate issues.
type leaf struct {
	cert, key, name string
	dns             []string
	ips             []net.IP
	usage           []x509.ExtKeyUsage
}

// IssueClient writes a client certificate for name, signed by the CA Generate wrote into dir,
// as certFile and keyFile (paths). Tests use it for a certificate the CA vouches for that is
// not cart's.
func IssueClient(dir, name, certFile, keyFile string, now time.Time) error {
	return issueFromDir(dir, leaf{certFile, keyFile, name, []string{name}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, now)
}

// IssueServer writes a server certificate for the host name, signed by the CA Generate wrote
// into dir, as certFile and keyFile (paths). Tests use it for a server the CA vouches for under
// another name than the one a client dials.
func IssueServer(dir, name, certFile, keyFile string, now time.Time) error {
	return issueFromDir(dir, leaf{certFile, keyFile, name, []string{name}, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, now)
}

// issueFromDir signs l with the CA Generate wrote into dir.
func issueFromDir(dir string, l leaf, now time.Time) error {
	caPEM, err := os.ReadFile(filepath.Join(dir, CACert)) //nolint:gosec // the folder Generate wrote
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey)) //nolint:gosec // the folder Generate wrote
	if err != nil {
		return err
	}
	cb, _ := pem.Decode(caPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return fmt.Errorf("%s: no PEM CA certificate and key", dir)
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	caKey, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return err
	}
	return issue("", ca, caKey, l, now)
}

// issue signs l with the CA and writes it into dir.
func issue(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, l leaf, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: l.name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(LeafValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: l.usage,
		DNSNames: l.dns, IPAddresses: l.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return write(dir, l.cert, l.key, der, key, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// write stores a certificate and its key with keyMode. The CA key is the owner's alone; the
// services' keys are readable by all, so that the containers' non-root user can read them
// through a bind mount: acceptable for development certificates, not for real ones.
func write(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey, keyMode os.FileMode) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil { //nolint:gosec // certificates are public
		return fmt.Errorf("write %s: %w", certName, err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), keyMode); err != nil {
		return fmt.Errorf("write %s: %w", keyName, err)
	}
	return nil
}
