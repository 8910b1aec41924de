// Package tlsconfig builds the TLS configurations of the gRPC link between the services from
// PEM files: a server that may require client certificates (mutual TLS), and a client that
// verifies the server against a CA and may present its own certificate.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Server returns the configuration of a TLS server with the certificate in certFile and
// keyFile. When clientCAFile is set, clients must present a certificate signed by one of its
// CAs; when clientNames is not empty too, that certificate must also name one of them (as a
// DNS name of its subject alternative names, or as its common name when it has none), so that
// another certificate from the same CA (another service's, say) is refused.
func Server(certFile, keyFile, clientCAFile string, clientNames []string) (*tls.Config, error) {
	cert, key, err := readPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	var ca []byte
	if clientCAFile != "" {
		if ca, err = os.ReadFile(clientCAFile); err != nil { //nolint:gosec // an operator-configured path
			return nil, fmt.Errorf("read CA file: %w", err)
		}
	}
	return serverConfig(cert, key, ca, clientCAFile, clientNames)
}

// serverConfig is Server's configuration from the files' contents; caFile names ca in errors.
func serverConfig(certPEM, keyPEM, ca []byte, caFile string, clientNames []string) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	if ca != nil {
		pool, err := pool(ca, caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if len(clientNames) > 0 {
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !namedAs(cs.PeerCertificates[0], clientNames) {
					return ErrClientNotAllowed
				}
				return nil
			}
		}
	} else if len(clientNames) > 0 {
		return nil, errors.New("client names need a client CA to verify the certificates with")
	}
	return cfg, nil
}

// readPair reads a certificate file and its key file.
func readPair(certFile, keyFile string) (cert, key []byte, err error) {
	if cert, err = os.ReadFile(certFile); err != nil { //nolint:gosec // an operator-configured path
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	if key, err = os.ReadFile(keyFile); err != nil { //nolint:gosec // an operator-configured path
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	return cert, key, nil
}

// ErrClientNotAllowed refuses a client whose certificate, though signed by the client CA,
// names none of the allowed clients.
var ErrClientNotAllowed = errors.New("client certificate names no allowed client")

// namedAs reports whether cert names one of names: a DNS subject alternative name, or the
// common name of a certificate without any (as x509 treats legacy certificates).
func namedAs(cert *x509.Certificate, names []string) bool {
	if len(cert.DNSNames) > 0 {
		for _, n := range cert.DNSNames {
			if slices.Contains(names, n) {
				return true
			}
		}
		return false
	}
	return cert.Subject.CommonName != "" && slices.Contains(names, cert.Subject.CommonName)
}

// Client returns the configuration of a TLS client that trusts the CAs in caFile (the
// system's when empty), expects serverName (the dial target's host when empty) and, when
// certFile and keyFile are set, presents that certificate.
func Client(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	var ca, cert, key []byte
	var err error
	if caFile != "" {
		if ca, err = os.ReadFile(caFile); err != nil { //nolint:gosec // an operator-configured path
			return nil, fmt.Errorf("read CA file: %w", err)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		if cert, key, err = readPair(certFile, keyFile); err != nil {
			return nil, err
		}
	}
	return clientConfig(ca, caFile, cert, key, serverName)
}

// clientConfig is Client's configuration from the files' contents (nil: not configured);
// caFile names ca in errors.
func clientConfig(ca []byte, caFile string, certPEM, keyPEM []byte, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverName}
	if ca != nil {
		pool, err := pool(ca, caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if certPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ServerFiles name the PEM files of a TLS server, as configured, and the clients it allows.
// Their tags declare them as settings (package envconf) under the prefix of the field that
// holds them.
type ServerFiles struct {
	Cert string `env:"CERT" help:"PEM file of the gRPC port's certificate (serverAuth usage suffices: the REST gateway calls in-process). Empty: plaintext."`
	Key  string `env:"KEY" help:"PEM file of its private key; goes with the certificate."`
	// ClientCA, when set, makes clients present a certificate it signed (mutual TLS).
	ClientCA string `env:"CLIENT_CA" help:"PEM file of the CA whose client certificates the port requires (mutual TLS). Empty: no client certificate asked for."`
	// ClientNames, when set, are the identities a client certificate must name (Server).
	ClientNames []string `env:"CLIENT_NAMES" help:"Comma-separated identities a client certificate must name (a DNS name of its subject alternative names, or its common name when it has none), so that only those callers get in, not every certificate the CA signed."`
}

// Enabled reports whether TLS is configured.
func (f ServerFiles) Enabled() bool { return f.Cert != "" }

// ClientFiles name the PEM files of a TLS client, as configured. Their tags declare them as
// settings (package envconf) under the prefix of the field that holds them.
type ClientFiles struct {
	CA         string `env:"CA" help:"PEM file of the CA that signed the server's certificate. Empty: plaintext."`
	Cert       string `env:"CERT" help:"PEM file of the client certificate to present (mutual TLS)."`
	Key        string `env:"KEY" help:"PEM file of the client certificate's private key; goes with the certificate."`
	ServerName string `env:"SERVER_NAME" help:"The name checked in the server's certificate. Empty: the host of the address dialled."`
}

// Enabled reports whether TLS is configured: a CA to verify the server with.
func (f ClientFiles) Enabled() bool { return f.CA != "" }

func pool(pem []byte, file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
