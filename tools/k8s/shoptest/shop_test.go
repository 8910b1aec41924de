package shoptest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The CRDs the components need, from the projects' own published files in their Go modules.
var crds = []struct{ module, dir string }{
	{"github.com/cert-manager/cert-manager@v1.21.2", "deploy/crds"},
	{"github.com/prometheus-operator/prometheus-operator@v0.85.0", "example/prometheus-operator-crd"},
	{"sigs.k8s.io/gateway-api@v1.6.3", "config/crd/standard"},
}

// TestShopOnKubernetes applies the deploy tree as docs/deploy.md says to a real control plane
// and follows what the controllers make of it. The subtests run in order, each on what the
// previous left.
func TestShopOnKubernetes(t *testing.T) {
	bin := os.Getenv("K8S_BIN")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("K8S_BIN is not set: run make test-k8s, which builds the control plane")
		}
		t.Skip("K8S_BIN is not set: make test-k8s builds the control plane and runs this")
	}
	deploy, err := filepath.Abs("../../../deploy")
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, bin)

	t.Run("CRDs", func(t *testing.T) {
		for _, crd := range crds {
			dir := filepath.Join(downloadDir(t, crd.module), crd.dir)
			files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no CRDs in %s (%v)", dir, err)
			}
			for _, f := range files {
				c.mustApply(t, "", "-f", f)
			}
		}
		if _, err := c.kubectl(t.Context(), "", "wait", "--for=condition=Established", "crd", "--all", "--timeout=2m"); err != nil {
			c.fail(t, err)
		}
	})

	// Every overlay with every component it does not already have.
	dev := kustomization(t, deploy, kust{
		resources:  []string{"overlays/dev"},
		components: []string{"components/mtls", "components/pgbouncer", "components/observability"},
	})
	production := kustomization(t, deploy, kust{
		namespace:  "shop-production",
		resources:  []string{"overlays/production"},
		components: []string{"components/pgbouncer", "components/observability"},
		// As docs/deploy.md asks of a kustomization that sets another namespace: the mtls
		// Certificates then name their Services in it.
		transformers: []string{"components/mtls/in-cluster-names"},
	})

	t.Run("broken overlays are refused", func(t *testing.T) {
		// The namespace must exist, labelled, for Pod Security to judge pods in it.
		c.mustApply(t, "", "-k", dev)
		for _, tc := range []struct{ name, patch string }{
			{"a pod that violates restricted", `
- target: {kind: Deployment, name: cart}
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation
      value: true`},
			{"a Certificate its CRD's schema refuses", `
- target: {kind: Certificate, name: cart-grpc}
  patch: |-
    - op: add
      path: /spec/duration
      value: 90`},
			{"a Certificate with a field its CRD does not have", `
- target: {kind: Certificate, name: cart-grpc}
  patch: |-
    - op: add
      path: /spec/dnsName
      value: cart-grpc`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				broken := kustomization(t, deploy, kust{
					resources:  []string{"overlays/dev"},
					components: []string{"components/mtls", "components/pgbouncer", "components/observability"},
					patches:    tc.patch,
				})
				if err := c.apply("", "--dry-run=server", "-k", broken); err == nil {
					t.Fatal("applied, want refused")
				} else {
					t.Logf("refused, as it should be: %s", lastLine(err))
				}
			})
		}
		// And a pod on its own: refused outright by Pod Security, not only warned about.
		_, err := c.kubectl(t.Context(), `apiVersion: v1
kind: Pod
metadata: {name: escalating, namespace: shop}
spec:
  containers:
    - name: c
      image: ghcr.io/acme/shop-cart:0.1.0
      securityContext: {allowPrivilegeEscalation: true}
`, "apply", "--server-side", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Fatalf("pod allowing privilege escalation: got %v, want refused by PodSecurity", err)
		}
	})

	t.Run("dev installs", func(t *testing.T) {
		c.mustApply(t, "", "-k", dev)
		ns := c.namespace(t, "shop")
		if got := ns.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("namespace shop: enforce %q, want restricted", got)
		}
		c.waitAvailable(t, "shop", map[string]int{"customers": 2, "cart": 2, "customers-pgbouncer": 2, "cart-pgbouncer": 2})
		for _, name := range []string{"postgres", "nats"} {
			c.waitFor(t, 3*time.Minute, "StatefulSet "+name+" ready", func() (bool, error) {
				var s struct {
					Status struct {
						ReadyReplicas int `json:"readyReplicas"`
					} `json:"status"`
				}
				err := c.getJSON("shop", &s, "get", "statefulset", name)
				return err == nil && s.Status.ReadyReplicas == 1, err
			})
		}
	})

	t.Run("a second apply changes nothing", func(t *testing.T) {
		before := c.generations(t, "shop")
		if out, err := c.kubectl(t.Context(), "", "diff", "--server-side", "--field-manager=shop-deploy", "-k", dev); err != nil {
			t.Fatalf("kubectl diff: %v\n%s", err, out)
		}
		c.mustApply(t, "", "-k", dev)
		if after := c.generations(t, "shop"); !maps.Equal(before, after) {
			t.Errorf("generations before %v, after %v", before, after)
		}
	})

	t.Run("upgrade migrates before new pods are Ready", func(t *testing.T) {
		upgrade := kustomization(t, deploy, kust{
			resources:  []string{"overlays/dev"},
			components: []string{"components/mtls", "components/pgbouncer", "components/observability"},
			extra: `
images:
  - {name: ghcr.io/acme/shop-customers, newTag: "0.2.0"}
  - {name: ghcr.io/acme/shop-cart, newTag: "0.2.0"}
configMapGenerator:
  - name: shop-config
    behavior: merge
    literals: [LOG_LEVEL=debug]
`,
		})
		start := time.Now().Add(-time.Second).Truncate(time.Second)
		c.mustApply(t, "", "-k", upgrade)
		// The second apply is what failed with "field is immutable" while migrate was a Job.
		c.mustApply(t, "", "-k", upgrade)
		c.waitAvailable(t, "shop", map[string]int{"customers": 2, "cart": 2})
		for _, app := range []string{"customers", "cart"} {
			c.waitFor(t, 3*time.Minute, app+" runs only 0.2.0", func() (bool, error) {
				pods, err := c.pods("shop", "app.kubernetes.io/name="+app)
				if err != nil {
					return false, err
				}
				for _, p := range pods {
					if !strings.HasSuffix(p.Spec.Containers[0].Image, ":0.2.0") || p.Metadata.DeletionTimestamp != nil {
						return false, nil
					}
				}
				return len(pods) == 2, nil
			})
			pods, err := c.pods("shop", "app.kubernetes.io/name="+app)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods {
				ready := readyTime(p)
				var migrated *time.Time
				for _, s := range p.Status.InitContainerStatuses {
					if s.Name == "migrate" && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
						migrated = &s.State.Terminated.FinishedAt
					}
				}
				i := slices.IndexFunc(p.Spec.InitContainers, func(c container) bool { return c.Name == "migrate" })
				switch {
				case i < 0 || !strings.HasSuffix(p.Spec.InitContainers[i].Image, ":0.2.0"):
					t.Errorf("pod %s: no init container migrate of 0.2.0", p.Metadata.Name)
				case migrated == nil:
					t.Errorf("pod %s: migrate has not completed", p.Metadata.Name)
				case ready == nil:
					t.Errorf("pod %s: not Ready", p.Metadata.Name)
				case migrated.Before(start) || ready.Before(*migrated):
					t.Errorf("pod %s: migrated %s, Ready %s: want migrated first, after the upgrade began (%s)", p.Metadata.Name, migrated, ready, start)
				default:
					t.Logf("pod %s: migrated %s, Ready %s", p.Metadata.Name, migrated.Format(time.TimeOnly), ready.Format(time.TimeOnly))
				}
			}
		}
	})

	t.Run("production installs in a namespace of its own", func(t *testing.T) {
		// What the operator creates before applying (overlays/production): the Secrets, and the
		// database's CA for PgBouncer.
		c.mustApply(t, `apiVersion: v1
kind: Namespace
metadata: {name: shop-production}
---
apiVersion: v1
kind: Secret
metadata: {name: customers-secrets, namespace: shop-production}
stringData:
  jwt-secret: shoptest-customers-jwt-secret-0123456789abcdef0123456789
  database-url: postgres://customers:x@db.internal:5432/customers?sslmode=verify-full
  nats-url: nats://customers:x@nats.internal:4222
  pooled-database-url: postgres://customers:x@customers-pgbouncer:5432/customers?sslmode=disable&default_query_exec_mode=exec
---
apiVersion: v1
kind: Secret
metadata: {name: cart-secrets, namespace: shop-production}
stringData:
  page-token-secret: shoptest-cart-page-token-secret-0123456789abcdef012345
  database-url: postgres://cart:x@db.internal:5432/cart?sslmode=verify-full
  nats-url: nats://cart:x@nats.internal:4222
  pooled-database-url: postgres://cart:x@cart-pgbouncer:5432/cart?sslmode=disable&default_query_exec_mode=exec
---
apiVersion: v1
kind: Secret
metadata: {name: customers-pgbouncer, namespace: shop-production}
stringData:
  databases.ini: "[databases]\ncustomers = host=db.internal port=5432 dbname=customers\n"
  userlist.txt: "\"customers\" \"x\"\n"
---
apiVersion: v1
kind: Secret
metadata: {name: cart-pgbouncer, namespace: shop-production}
stringData:
  databases.ini: "[databases]\ncart = host=db.internal port=5432 dbname=cart\n"
  userlist.txt: "\"cart\" \"x\"\n"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: database-ca, namespace: shop-production}
data:
  ca.crt: "the database's CA bundle (PEM): kwok runs no PgBouncer to read it\n"
`)
		c.mustApply(t, "", "-k", production)
		if got := c.namespace(t, "shop-production").Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("namespace shop-production: enforce %q, want restricted", got)
		}
		names, err := c.kubectl(t.Context(), "", "get", "-n", "shop-production", "certificate", "cart-grpc", "-o", "jsonpath={.spec.dnsNames}")
		if want := `["cart-grpc","cart-grpc.shop-production","cart-grpc.shop-production.svc","cart-grpc.shop-production.svc.cluster.local"]`; err != nil || names != want {
			t.Errorf("Certificate cart-grpc in shop-production: dnsNames %s (%v), want %s", names, err, want)
		}
		// No replicas field in production: the HPAs raise the Deployments from 1 to their
		// minReplicas without any metrics server.
		c.waitAvailable(t, "shop-production", map[string]int{"customers": 2, "cart": 2, "customers-pgbouncer": 2, "cart-pgbouncer": 2})
		c.mustApply(t, "", "-k", production)
		c.waitAvailable(t, "shop-production", map[string]int{"customers": 2, "cart": 2})
	})

	t.Run("dev with Patroni", func(t *testing.T) { testPatroni(t, c, deploy) })
	t.Run("production with Patroni", func(t *testing.T) { testProductionPatroni(t, c, deploy) })
}

// kust is a kustomization over the deploy tree, written into a folder of its own.
type kust struct {
	namespace                           string
	resources, components, transformers []string
	patches, extra                      string
}

// kustomization writes k under deploy/.. (kustomize takes relative paths only) and returns its
// folder.
func kustomization(t *testing.T, deploy string, k kust) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(deploy, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ns := k.namespace
	if ns == "" {
		ns = "shop"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n", ns)
	for _, r := range k.resources {
		fmt.Fprintf(&b, "  - %s\n", rel(r))
	}
	b.WriteString("components:\n")
	for _, c := range k.components {
		fmt.Fprintf(&b, "  - %s\n", rel(c))
	}
	b.WriteString("transformers:\n")
	for _, tr := range k.transformers {
		fmt.Fprintf(&b, "  - %s\n", rel(tr))
	}
	if k.patches != "" {
		b.WriteString("patches:" + k.patches + "\n")
	}
	b.WriteString(k.extra)
	write(t, filepath.Join(dir, "kustomization.yaml"), b.String())
	return dir
}

type objectMeta struct {
	Name              string            `json:"name"`
	Labels            map[string]string `json:"labels"`
	Generation        int64             `json:"generation"`
	DeletionTimestamp *time.Time        `json:"deletionTimestamp"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type pod struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		InitContainers []container `json:"initContainers"`
		Containers     []container `json:"containers"`
	} `json:"spec"`
	Status struct {
		Conditions            []condition `json:"conditions"`
		InitContainerStatuses []struct {
			Name  string `json:"name"`
			State struct {
				Terminated *struct {
					ExitCode   int       `json:"exitCode"`
					FinishedAt time.Time `json:"finishedAt"`
				} `json:"terminated"`
			} `json:"state"`
		} `json:"initContainerStatuses"`
	} `json:"status"`
}

func readyTime(p pod) *time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" && c.Status == "True" {
			return &c.LastTransitionTime
		}
	}
	return nil
}

func (c *cluster) pods(namespace, selector string) ([]pod, error) {
	var list struct {
		Items []pod `json:"items"`
	}
	err := c.getJSON(namespace, &list, "get", "pods", "-l", selector)
	return list.Items, err
}

func (c *cluster) namespace(t *testing.T, name string) struct{ Metadata objectMeta } {
	t.Helper()
	var ns struct{ Metadata objectMeta }
	if err := c.getJSON("", &ns, "get", "namespace", name); err != nil {
		c.fail(t, err)
	}
	return ns
}

// waitAvailable waits until each Deployment has rolled out its current template to want
// replicas, all available, and is Available.
func (c *cluster) waitAvailable(t *testing.T, namespace string, want map[string]int) {
	t.Helper()
	for name, replicas := range want {
		c.waitFor(t, 4*time.Minute, fmt.Sprintf("Deployment %s/%s available with %d replicas", namespace, name, replicas), func() (bool, error) {
			var d struct {
				Metadata objectMeta
				Status   struct {
					ObservedGeneration int64       `json:"observedGeneration"`
					Replicas           int         `json:"replicas"`
					UpdatedReplicas    int         `json:"updatedReplicas"`
					AvailableReplicas  int         `json:"availableReplicas"`
					Conditions         []condition `json:"conditions"`
				} `json:"status"`
			}
			if err := c.getJSON(namespace, &d, "get", "deployment", name); err != nil {
				return false, err
			}
			s := d.Status
			return s.ObservedGeneration == d.Metadata.Generation && s.Replicas == replicas &&
				s.UpdatedReplicas == replicas && s.AvailableReplicas == replicas &&
				conditionTrue(s.Conditions, "Available"), nil
		})
	}
}

// generations are the metadata.generation of the namespace's objects that have one that
// changes with their spec.
func (c *cluster) generations(t *testing.T, namespace string) map[string]int64 {
	t.Helper()
	var list struct {
		Items []struct {
			Kind     string     `json:"kind"`
			Metadata objectMeta `json:"metadata"`
		} `json:"items"`
	}
	if err := c.getJSON(namespace, &list, "get", "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,certificates,issuers,podmonitors,prometheusrules"); err != nil {
		c.fail(t, err)
	}
	out := map[string]int64{}
	for _, o := range list.Items {
		out[o.Kind+"/"+o.Metadata.Name] = o.Metadata.Generation
	}
	return out
}

// lastLine is the last non-empty line of err: kubectl's own message, after the command.
func lastLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	return lines[len(lines)-1]
}
