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
	// IntruderCert/Key are a client certificate from the files' own CA for the name
	// "intruder": trusted by the CA, but not cart.
	IntruderCert, IntruderKey string
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
	intruderCert, intruderKey := filepath.Join(dir, "intruder.pem"), filepath.Join(dir, "intruder-key.pem")
	if err := devcerts.IssueClient(dir, "intruder", intruderCert, intruderKey, time.Now()); err != nil {
		t.Fatal(err)
	}
	return Files{
		IntruderCert:    intruderCert,
		IntruderKey:     intruderKey,
		CA:              filepath.Join(dir, devcerts.CACert),
		ServerCert:      filepath.Join(dir, devcerts.CustomersCert),
		ServerKey:       filepath.Join(dir, devcerts.CustomersKey),
		ClientCert:      filepath.Join(dir, devcerts.CartClientCert),
		ClientKey:       filepath.Join(dir, devcerts.CartClientKey),
		OtherClientCert: filepath.Join(other, devcerts.CartClientCert),
		OtherClientKey:  filepath.Join(other, devcerts.CartClientKey),
	}
}
