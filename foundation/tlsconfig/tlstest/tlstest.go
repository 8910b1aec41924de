// Package tlstest gives tests of TLS links the certificates `make certs` writes (package
// devcerts), plus a client certificate from another CA that a server must refuse.
package tlstest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

// Files are the PEM files of one test PKI.
type Files struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	// OtherClientCert/Key come from another CA.
	OtherClientCert, OtherClientKey string
}

// Write creates two development PKIs in t.TempDir(): the one the files name, and another whose
// client certificate is the "other" one.
func Write(t testing.TB) Files {
	t.Helper()
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if err := devcerts.Generate(d, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return Files{
		CA:              filepath.Join(dir, devcerts.CACert),
		ServerCert:      filepath.Join(dir, devcerts.CustomersCert),
		ServerKey:       filepath.Join(dir, devcerts.CustomersKey),
		ClientCert:      filepath.Join(dir, devcerts.CartClientCert),
		ClientKey:       filepath.Join(dir, devcerts.CartClientKey),
		OtherClientCert: filepath.Join(other, devcerts.CartClientCert),
		OtherClientKey:  filepath.Join(other, devcerts.CartClientKey),
	}
}
