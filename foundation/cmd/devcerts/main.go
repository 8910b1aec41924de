// Command devcerts writes a development CA and the services' TLS certificates (see package
// devcerts). `make certs` runs it.
//
// Usage: devcerts [-out certs]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/acme/shop/foundation/tlsconfig/devcerts"
)

func main() {
	out := flag.String("out", "certs", "folder to write the PEM files into")
	flag.Parse()
	if err := devcerts.Generate(*out, time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "devcerts:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote a development CA and certificates for customers and cart into %s/ (the CA key stays out of git)\n", *out)
}
