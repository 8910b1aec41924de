package deploy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCertificatesNameTheirNamespace: the mtls Certificates name their Services' in-cluster
// DNS forms in the namespace the build puts them in: the overlays' shop, and shop-staging for
// an operator's kustomization that sets it (with components/mtls/in-cluster-names listed).
func TestCertificatesNameTheirNamespace(t *testing.T) {
	for _, v := range variants {
		if v.name != "production" && v.name != "production in shop-staging" && v.name != "dev+mtls" {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			m := build(t, v)
			ns := "shop"
			if v.namespace != "" {
				ns = v.namespace
			}
			if len(m.namespaces) != 1 || m.namespaces[0].Name != ns {
				t.Fatalf("the build's Namespace objects: %v, want one, %s", m.namespaces, ns)
			}
			for _, svc := range []string{"customers-grpc", "cart-grpc"} {
				c := certificateNamed(m, svc)
				if c == nil {
					t.Fatalf("no Certificate %s", svc)
				}
				want := []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
				if diff := cmp.Diff(want, c.Spec.DNSNames); diff != "" || c.Namespace != ns {
					t.Errorf("Certificate %s in namespace %s: dnsNames (-want +got):\n%s", svc, c.Namespace, diff)
				}
			}
		})
	}
}
