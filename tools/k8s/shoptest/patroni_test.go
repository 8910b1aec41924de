package shoptest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// patroniDatabases are components/patroni's StatefulSets, each with its primary Service.
var patroniDatabases = []string{"customers-db", "cart-db"}

// testPatroni applies overlays/dev-patroni with every other component into the namespace
// shop-ha, and checks what the control plane can: the API server admits all of it under Pod
// Security restricted without a warning, the StatefulSets become ready, the disruption budgets
// allow one eviction, Patroni's account may do what its leader election needs and no more, and
// the primary Services follow the role label as Patroni sets it. Patroni itself does not run
// (kwok runs no containers): the test labels the pods as Patroni would.
func testPatroni(t *testing.T, c *cluster, deploy string) {
	const ns = "shop-ha"
	// Three pods per database, and the dev overlay's NATS.
	c.mustApply(t, volumes(ns, 2*3+1))
	ha := kustomization(t, deploy, kust{
		namespace:  ns,
		resources:  []string{"overlays/dev-patroni"},
		components: []string{"components/mtls", "components/pgbouncer", "components/observability"},
	})
	c.mustApply(t, "", "-k", ha)
	// Pod Security judges the StatefulSets too, now that the namespace exists, labelled: a
	// Patroni pod that may escalate its privileges is refused (a warning fails apply).
	broken := kustomization(t, deploy, kust{
		namespace:  ns,
		resources:  []string{"overlays/dev-patroni"},
		components: []string{"components/mtls", "components/pgbouncer", "components/observability"},
		patches: `
- target: {kind: StatefulSet, name: cart-db}
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/securityContext/allowPrivilegeEscalation
      value: true`,
	})
	if err := c.apply("", "--dry-run=server", "-k", broken); err == nil || !strings.Contains(err.Error(), "allowPrivilegeEscalation") {
		t.Errorf("a Patroni pod allowing privilege escalation: got %v, want refused by Pod Security", err)
	}
	if got := c.namespace(t, ns).Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s: enforce %q, want restricted", ns, got)
	}
	c.waitAvailable(t, ns, map[string]int{"customers": 2, "cart": 2, "customers-pgbouncer": 2, "cart-pgbouncer": 2})
	c.waitPatroni(t, ns)

	t.Run("Patroni's account", func(t *testing.T) {
		sa := "system:serviceaccount:" + ns + ":patroni"
		for _, tc := range []struct {
			verb, resource string
			want           string
		}{
			{"create", "configmaps", "yes"},
			{"patch", "configmaps", "yes"},
			{"watch", "configmaps", "yes"},
			{"patch", "pods", "yes"},
			{"list", "pods", "yes"},
			{"get", "secrets", "no"},
			{"create", "endpoints", "no"},
			{"create", "services", "no"},
			{"delete", "pods", "no"},
		} {
			// can-i exits 1 when the answer is no: the printed answer is what counts.
			out, _, _ := c.kubectlOutputs(context.Background(), "", "auth", "can-i", "--as="+sa, "-n", ns, tc.verb, tc.resource)
			if got := strings.TrimSpace(out); got != tc.want {
				t.Errorf("%s may %s %s: %q, want %q", sa, tc.verb, tc.resource, got, tc.want)
			}
		}
		// And nothing in another namespace: a Role, not a ClusterRole.
		out, _, _ := c.kubectlOutputs(context.Background(), "", "auth", "can-i", "--as="+sa, "-n", "shop", "patch", "pods")
		if got := strings.TrimSpace(out); got != "no" {
			t.Errorf("%s may patch pods in shop: %q, want no", sa, got)
		}
	})

	t.Run("the primary Service follows the leader", func(t *testing.T) {
		for _, db := range patroniDatabases {
			// Before Patroni has elected anyone, no pod is labelled: the Service has no endpoint.
			c.waitFor(t, time.Minute, db+"-primary without endpoints", func() (bool, error) {
				got, err := c.readyEndpoints(ns, db+"-primary")
				return err == nil && len(got) == 0, err
			})
			// Patroni on db-1 takes the leader lock and labels the pods.
			c.label(t, ns, db+"-0", "role=replica")
			c.label(t, ns, db+"-1", "role=primary")
			c.label(t, ns, db+"-2", "role=replica")
			c.waitEndpoints(t, ns, db+"-primary", db+"-1")
			// A switchover to db-2: the old primary is demoted and relabelled, the new one
			// promoted. In between, both pods may carry role=primary for a moment, which
			// target_session_attrs=read-write covers; the end state is the new primary alone.
			c.label(t, ns, db+"-2", "role=primary")
			c.label(t, ns, db+"-1", "role=replica")
			c.waitEndpoints(t, ns, db+"-primary", db+"-2")
			// The headless Service keeps every pod, whatever its role.
			c.waitEndpoints(t, ns, db, db+"-0", db+"-1", db+"-2")
		}
	})
}

// testProductionPatroni adds components/patroni to the production install in shop-production,
// with the Secrets its documentation asks the operator for.
func testProductionPatroni(t *testing.T, c *cluster, deploy string) {
	const ns = "shop-production"
	c.mustApply(t, volumes(ns, 2*3))
	var secrets strings.Builder
	for _, db := range patroniDatabases {
		app := strings.TrimSuffix(db, "-db")
		fmt.Fprintf(&secrets, `---
apiVersion: v1
kind: Secret
metadata: {name: %[1]s, namespace: %[3]s}
stringData:
  superuser-password: shoptest-%[1]s-superuser
  replication-password: shoptest-%[1]s-replication
  app-password: shoptest-%[2]s
---
apiVersion: v1
kind: Secret
metadata: {name: %[2]s-secrets, namespace: %[3]s}
stringData:
  database-url: postgres://%[2]s:shoptest-%[2]s@%[1]s-primary:5432/%[2]s?sslmode=disable&target_session_attrs=read-write
  pooled-database-url: postgres://%[2]s:shoptest-%[2]s@%[2]s-pgbouncer:5432/%[2]s?sslmode=disable&default_query_exec_mode=exec&target_session_attrs=read-write
---
apiVersion: v1
kind: Secret
metadata: {name: %[2]s-pgbouncer, namespace: %[3]s}
stringData:
  databases.ini: "[databases]\n%[2]s = host=%[1]s-primary port=5432 dbname=%[2]s\n"
  userlist.txt: "\"%[2]s\" \"shoptest-%[2]s\"\n"
`, db, app, ns)
	}
	c.mustApply(t, secrets.String())
	production := kustomization(t, deploy, kust{
		namespace:  ns,
		resources:  []string{"overlays/production"},
		components: []string{"components/pgbouncer", "components/observability", "components/patroni"},
	})
	c.mustApply(t, "", "-k", production)
	c.waitAvailable(t, ns, map[string]int{"customers": 2, "cart": 2, "customers-pgbouncer": 2, "cart-pgbouncer": 2})
	c.waitPatroni(t, ns)
}

// waitPatroni waits until each Patroni StatefulSet of namespace runs three ready pods of its
// current revision, and its PodDisruptionBudget allows exactly one of them to be evicted.
func (c *cluster) waitPatroni(t *testing.T, namespace string) {
	t.Helper()
	for _, db := range patroniDatabases {
		c.waitFor(t, 4*time.Minute, fmt.Sprintf("StatefulSet %s/%s ready with 3 pods", namespace, db), func() (bool, error) {
			var s struct {
				Metadata objectMeta
				Status   struct {
					ObservedGeneration int64  `json:"observedGeneration"`
					ReadyReplicas      int    `json:"readyReplicas"`
					UpdatedReplicas    int    `json:"updatedReplicas"`
					CurrentRevision    string `json:"currentRevision"`
					UpdateRevision     string `json:"updateRevision"`
				} `json:"status"`
			}
			if err := c.getJSON(namespace, &s, "get", "statefulset", db); err != nil {
				return false, err
			}
			st := s.Status
			return st.ObservedGeneration == s.Metadata.Generation && st.ReadyReplicas == 3 && st.UpdatedReplicas == 3 &&
				st.CurrentRevision == st.UpdateRevision, nil
		})
		c.waitFor(t, 2*time.Minute, fmt.Sprintf("PodDisruptionBudget %s/%s allows one eviction of 3 pods", namespace, db), func() (bool, error) {
			var p struct {
				Status struct {
					ExpectedPods       int `json:"expectedPods"`
					CurrentHealthy     int `json:"currentHealthy"`
					DesiredHealthy     int `json:"desiredHealthy"`
					DisruptionsAllowed int `json:"disruptionsAllowed"`
				} `json:"status"`
			}
			if err := c.getJSON(namespace, &p, "get", "poddisruptionbudget", db); err != nil {
				return false, err
			}
			s := p.Status
			return s.ExpectedPods == 3 && s.CurrentHealthy == 3 && s.DesiredHealthy == 2 && s.DisruptionsAllowed == 1, nil
		})
	}
}

// volumes are n PersistentVolumes for the claims of namespace's StatefulSets: the cluster's
// storage, bound to whichever claim asks (no provisioner runs).
func volumes(namespace string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: shoptest-%[1]s-%[2]d
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/shoptest-%[1]s-%[2]d}
`, namespace, i)
	}
	return b.String()
}

func (c *cluster) label(t *testing.T, namespace, pod, label string) {
	t.Helper()
	if _, err := c.kubectl(context.Background(), "", "label", "pod", "-n", namespace, "--overwrite", pod, label); err != nil {
		c.fail(t, err)
	}
}

// readyEndpoints returns the names of the pods the EndpointSlices of service list as ready.
func (c *cluster) readyEndpoints(namespace, service string) ([]string, error) {
	var list struct {
		Items []struct {
			Endpoints []struct {
				Conditions struct {
					Ready *bool `json:"ready"`
				} `json:"conditions"`
				TargetRef *struct {
					Name string `json:"name"`
				} `json:"targetRef"`
			} `json:"endpoints"`
		} `json:"items"`
	}
	if err := c.getJSON(namespace, &list, "get", "endpointslices", "-l", "kubernetes.io/service-name="+service); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			if e.TargetRef != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				out = append(out, e.TargetRef.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// waitEndpoints waits until service's EndpointSlices list exactly pods as ready.
func (c *cluster) waitEndpoints(t *testing.T, namespace, service string, pods ...string) {
	t.Helper()
	var got []string
	c.waitFor(t, time.Minute, fmt.Sprintf("Service %s/%s routing to %v only", namespace, service, pods), func() (bool, error) {
		var err error
		got, err = c.readyEndpoints(namespace, service)
		return slices.Equal(got, pods), err
	})
	t.Logf("Service %s routes to %v", service, got)
}
