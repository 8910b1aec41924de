package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// TestChecksCatchBreakage breaks each built variant in one way and expects the check that
// guards against it to report a problem: a check that cannot fail proves nothing.
func TestChecksCatchBreakage(t *testing.T) {
	tests := []struct {
		variant, check, name string
		// want is part of the problem the check must report.
		want    string
		breakIt func(m *manifests)
	}{
		{"dev", "containers", "serving container without a startup probe", `no startup probe`, func(m *manifests) {
			container(m, "cart").StartupProbe = nil
		}},
		{"production", "containers", "migrate step without a CPU limit", `no cpu limit`, func(m *manifests) {
			delete(m.migrate("customers").Resources.Limits, corev1.ResourceCPU)
		}},
		{"base", "containers", "memory request above the limit", `memory request 1Gi above its limit`, func(m *manifests) {
			container(m, "cart").Resources.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi")
		}},
		{"dev", "containers", "writable root filesystem", `readOnlyRootFilesystem is not true`, func(m *manifests) {
			m.statefulSets[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false)
		}},
		{"base", "containers", "migrate step keeps its capabilities", `capabilities: drop ALL`, func(m *manifests) {
			m.migrate("cart").SecurityContext.Capabilities = nil
		}},
		{"base", "containers", "migrate step without a seccomp profile", `seccompProfile is not RuntimeDefault`, func(m *manifests) {
			m.migrate("cart").SecurityContext.SeccompProfile = nil
		}},
		{"base", "containers", "privilege escalation", `allowPrivilegeEscalation is not false`, func(m *manifests) {
			container(m, "customers").SecurityContext.AllowPrivilegeEscalation = nil
		}},
		{"base", "containers", "no numeric user", `no non-root runAsUser`, func(m *manifests) {
			m.deployment("customers").Spec.Template.Spec.SecurityContext.RunAsUser = nil
		}},
		{"base", "containers", "latest image", `not latest`, func(m *manifests) { container(m, "customers").Image = "ghcr.io/acme/shop-customers:latest" }},
		{"base", "containers", "untagged image", `has no tag`, func(m *manifests) { container(m, "customers").Image = "ghcr.io/acme/shop-customers" }},
		{"base", "shop probes", "readiness on /healthz", `want /readyz`, func(m *manifests) {
			container(m, "customers").ReadinessProbe.HTTPGet.Path = "/healthz"
		}},
		{"base", "shop probes", "liveness on the gRPC port", `not on the REST port`, func(m *manifests) {
			container(m, "cart").LivenessProbe.HTTPGet.Port = intstr.FromString("grpc")
		}},
		{"base", "disruption budgets", "no PodDisruptionBudget", `no PodDisruptionBudget selects`, func(m *manifests) { m.pdbs = nil }},
		{"dev+pgbouncer", "disruption budgets", "PgBouncer without one", `customers-pgbouncer: no PodDisruptionBudget`, func(m *manifests) {
			m.pdbs = slices.DeleteFunc(m.pdbs, func(p *policyv1.PodDisruptionBudget) bool { return p.Name == "customers-pgbouncer" })
		}},
		{"base", "replicas", "one replica", `fewer than 2 replicas`, func(m *manifests) { m.deployment("customers").Spec.Replicas = ptr.To[int32](1) }},
		{"production", "replicas", "no HPA", `no HorizontalPodAutoscaler in production`, func(m *manifests) { m.hpas = m.hpas[1:] }},
		{"production", "replicas", "replicas beside the HPA", `must not set replicas`, func(m *manifests) {
			m.deployment("cart").Spec.Replicas = ptr.To[int32](2)
		}},
		{"base", "service settings", "no database URL", `CUSTOMERS_DATABASE_URL is not set`, func(m *manifests) {
			c := container(m, "customers")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "CUSTOMERS_DATABASE_URL" })
		}},
		{"base", "service settings", "misspelt variable", `sets CUSTOMERS_TOKEN_TLL, which .env.example does not list`, func(m *manifests) {
			configMap(m, "customers-config").Data["CUSTOMERS_TOKEN_TLL"] = "15m"
		}},
		{"base", "service settings", "Deployment migrates on start", `CART_MIGRATE_ON_START is not false`, func(m *manifests) {
			setEnv(container(m, "cart"), "CART_MIGRATE_ON_START", "true")
		}},
		{"base", "service settings", "migrate step serves", `with migrate`, func(m *manifests) {
			m.migrate("cart").Args = []string{"serve"}
		}},
		{"base", "service settings", "plaintext gRPC that production refuses", `production refuses to start`, func(m *manifests) {
			delete(configMap(m, "customers-config").Data, "CUSTOMERS_ALLOW_PLAINTEXT_GRPC")
		}},
		{"production", "service settings", "no NATS in production", `no CART_NATS_URL: production refuses to serve`, func(m *manifests) {
			c := container(m, "cart")
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "CART_NATS_URL" })
		}},
		{"production", "service settings", "plaintext in production", `CART_ALLOW_PLAINTEXT_CUSTOMERS=true in production`, func(m *manifests) {
			configMap(m, "cart-config").Data["CART_ALLOW_PLAINTEXT_CUSTOMERS"] = "true"
		}},
		{"dev", "service settings", "demo data in production mode", `CUSTOMERS_DEMO_DATA=true, which production refuses`, func(m *manifests) {
			configMap(m, "shop-config").Data["APP_ENV"] = "production"
		}},
		{"production", "secrets", "inline secret", `CUSTOMERS_JWT_SECRET is not from a secretKeyRef`, func(m *manifests) {
			setEnv(container(m, "customers"), "CUSTOMERS_JWT_SECRET", "0123456789abcdef0123456789abcdef")
		}},
		{"production", "secrets", "Secret with data", `production defines no secret values`, func(m *manifests) {
			m.secrets = append(m.secrets, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "customers-secrets"}, StringData: map[string]string{"jwt-secret": "x"}})
		}},
		{"dev", "secrets", "Secret not labelled dev-only", `is not labelled shop-dev-only`, func(m *manifests) { m.secrets[0].Labels = nil }},
		{"dev", "secrets", "referenced key missing", `has no key database-url`, func(m *manifests) {
			for _, s := range m.secrets {
				delete(s.Data, "database-url")
			}
		}},
		{"base", "secrets", "secret in a ConfigMap", `CART_DATABASE_URL belongs in a Secret`, func(m *manifests) {
			configMap(m, "cart-config").Data["CART_DATABASE_URL"] = "postgres://cart:pw@db/cart"
		}},
		{"base", "graceful shutdown", "grace period too short", `terminationGracePeriodSeconds is not above`, func(m *manifests) {
			m.deployment("cart").Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](20)
		}},
		{"base", "graceful shutdown", "shutdown timeout longer than the grace period", `terminationGracePeriodSeconds is not above`, func(m *manifests) {
			configMap(m, "shop-config").Data["SHUTDOWN_TIMEOUT"] = "40s"
		}},
		{"base", "graceful shutdown", "shutdown timeout not a duration", `SHUTDOWN_TIMEOUT is not set to a duration`, func(m *manifests) {
			configMap(m, "shop-config").Data["SHUTDOWN_TIMEOUT"] = "soon"
		}},
		{"base", "no repeated defaults", "a setting repeats its default", `sets CART_MAX_QUANTITY=99, its default`, func(m *manifests) {
			configMap(m, "cart-config").Data["CART_MAX_QUANTITY"] = "99"
		}},
		{"base", "services", "no Service for cart's gRPC port", `no Service for port 50052`, func(m *manifests) {
			m.services = slices.DeleteFunc(m.services, func(s *corev1.Service) bool { return s.Name == "cart-grpc" })
		}},
		{"base", "services", "Service targets a port the pods do not have", `targets htp`, func(m *manifests) {
			m.service("customers").Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}},
		{"base", "customers-grpc", "not headless", `is not headless`, func(m *manifests) { m.service("customers-grpc").Spec.ClusterIP = "" }},
		{"base", "customers-grpc", "cart dials without the DNS resolver", `want "dns:///customers-grpc:50051"`, func(m *manifests) {
			configMap(m, "cart-config").Data["CART_CUSTOMERS_ADDR"] = "customers-grpc:50051"
		}},
		{"production", "network policy", "no NetworkPolicy", `no NetworkPolicy restricts ingress`, func(m *manifests) { m.networkPolicies = nil }},
		{"production", "network policy", "gRPC port open to another namespace", `beyond cart's pods`, func(m *manifests) {
			networkPolicy(m, "customers").Spec.Ingress[1].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}},
		{"production", "network policy", "a rule opening every port", `to everyone`, func(m *manifests) {
			np := networkPolicy(m, "customers")
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
		}},
		{"production", "trusted proxies", "customers trusts no proxy", `CUSTOMERS_TRUSTED_PROXIES is not set`, func(m *manifests) {
			setEnv(container(m, "customers"), "CUSTOMERS_TRUSTED_PROXIES", "")
		}},
		{"production", "trusted proxies", "a range that is no range", `CART_TRUSTED_PROXIES "10.0.0.0/33"`, func(m *manifests) {
			setEnv(container(m, "cart"), "CART_TRUSTED_PROXIES", "10.0.0.0/33")
		}},
		{"production", "trusted proxies", "a route to the gRPC port", `Deployment cart: no HTTPRoute sends requests to its REST port`, func(m *manifests) {
			for _, r := range m.httpRoutes {
				if r.Name == "cart" {
					r.Spec.Rules[0].BackendRefs[0].Name, r.Spec.Rules[0].BackendRefs[0].Port = "cart-grpc", 50052
				}
			}
		}},
		{"production", "mutual TLS", "certificate not mounted", `is in no mounted certificate Secret`, func(m *manifests) {
			container(m, "customers").VolumeMounts = nil
		}},
		{"production", "mutual TLS", "certificate for another name", `does not name customers-grpc`, func(m *manifests) {
			m.certificateFor("customers-grpc-tls").Spec.DNSNames = []string{"customers"}
		}},
		{"production", "mutual TLS", "cart's certificate cannot authenticate a client", `no client auth usage`, func(m *manifests) {
			m.certificateFor("cart-grpc-tls").Spec.Usages = []string{"digital signature", "server auth"}
		}},
		{"production", "mutual TLS", "customers does not ask for client certificates", `does not require a client certificate`, func(m *manifests) {
			delete(configMap(m, "customers-config").Data, "CUSTOMERS_GRPC_TLS_CLIENT_CA")
		}},
		{"production", "mutual TLS", "cart's certificate without its in-cluster names", `does not name cart-grpc.shop.svc.cluster.local`, func(m *manifests) {
			c := certificateNamed(m, "cart-grpc")
			c.Spec.DNSNames = c.Spec.DNSNames[:1]
		}},
		// What a kustomization over production that sets another namespace builds without
		// listing components/mtls/in-cluster-names: the Certificates still name shop.
		{"production in shop-staging", "mutual TLS", "names of the namespace below", `names customers-grpc.shop.svc, which is not Service customers-grpc in that namespace`, func(m *manifests) {
			for _, c := range m.certificates {
				for i, n := range c.Spec.DNSNames {
					c.Spec.DNSNames[i] = strings.Replace(n, ".shop-staging", ".shop", 1)
				}
			}
		}},
		{"production", "mutual TLS", "customers lets in any certificate of the CA", `does not name cart's certificate`, func(m *manifests) {
			delete(configMap(m, "customers-config").Data, "CUSTOMERS_GRPC_TLS_CLIENT_NAMES")
		}},
		{"dev+pgbouncer", "pgbouncer", "DSN in pgx's default query mode", `without default_query_exec_mode`, func(m *manifests) {
			for _, s := range m.secrets {
				if v, ok := s.Data["pooled-database-url"]; ok {
					s.Data["pooled-database-url"] = []byte(strings.ReplaceAll(string(v), "default_query_exec_mode=exec", "x=y"))
				}
			}
		}},
		{"dev+pgbouncer", "pgbouncer", "session pooling", `pool_mode is "session"`, func(m *manifests) {
			cm := configMap(m, "pgbouncer-config")
			cm.Data["pgbouncer.ini"] = strings.ReplaceAll(cm.Data["pgbouncer.ini"], "pool_mode = transaction", "pool_mode = session")
		}},
		{"production+pgbouncer", "pgbouncer", "CA bundle from a file nothing mounts", `server_tls_ca_file /etc/pgbouncer/database-ca.crt is "no mounted file"`, func(m *manifests) {
			for _, v := range m.deployment("cart-pgbouncer").Spec.Template.Spec.Volumes {
				for _, src := range v.Projected.Sources {
					if src.ConfigMap != nil && src.ConfigMap.Name == "database-ca" {
						src.ConfigMap.Items[0].Path = "ca.crt"
					}
				}
			}
		}},
		{"dev+pgbouncer", "pgbouncer", "migrate step goes through PgBouncer", `where a long schema change would hold a pooled connection`, func(m *manifests) {
			for i := range m.migrate("customers").Env {
				e := &m.migrate("customers").Env[i]
				if e.Name == "CUSTOMERS_DATABASE_URL" {
					e.ValueFrom.SecretKeyRef.Key = "pooled-database-url"
				}
			}
		}},
		{"base", "metrics", "no metrics container port", `no container port metrics on 9092`, func(m *manifests) {
			c := container(m, "cart")
			c.Ports = slices.DeleteFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" })
		}},
		{"base", "metrics", "metrics switched off", `CUSTOMERS_METRICS_ADDR`, func(m *manifests) {
			configMap(m, "customers-config").Data["CUSTOMERS_METRICS_ADDR"] = ""
		}},
		{"production", "metrics", "NetworkPolicy opens metrics to everyone", `opens the metrics port of Deployment customers beyond Prometheus' pods`, func(m *manifests) {
			networkPolicy(m, "customers").Spec.Ingress[2].From[0] = everyone
		}},
		{"production", "metrics", "NetworkPolicy admits every pod of monitoring", `opens the metrics port of Deployment cart beyond Prometheus' pods`, func(m *manifests) {
			networkPolicy(m, "cart").Spec.Ingress[1].From[0].PodSelector = nil
		}},
		{"production", "metrics", "a rule opening the metrics port to everyone", `opens the metrics port of Deployment cart to everyone`, func(m *manifests) {
			np := networkPolicy(m, "cart")
			np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromString("metrics"))}}})
		}},
		{"production", "metrics", "cart without a NetworkPolicy", `Deployment cart: no NetworkPolicy restricts ingress`, func(m *manifests) {
			m.networkPolicies = slices.DeleteFunc(m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "cart" || np.Name == "default-deny" })
		}},
		{"production+observability", "monitoring", "PodMonitor on a port the pods lack", `scrapes port prometheus, which Deployment cart's pods do not have`, func(m *manifests) {
			m.podMonitors[1].Spec.PodMetricsEndpoints[0].Port = ptr.To("prometheus")
		}},
		{"production+observability", "monitoring", "PodMonitor selecting no pods", `selects no Deployment's pods`, func(m *manifests) {
			m.podMonitors[0].Spec.Selector.MatchLabels["app.kubernetes.io/name"] = "customer"
		}},
		{"dev+observability", "monitoring", "PodMonitor without exemplars", `OpenMetrics is not the first scrape protocol`, func(m *manifests) {
			m.podMonitors[0].Spec.ScrapeProtocols = nil
		}},
		{"production+observability", "monitoring", "alert that does not parse", `unclosed '('`, func(m *manifests) {
			m.prometheusRules[0].Spec.Groups[0].Rules[0].Expr = intstr.FromString(`sum(rate(grpc_server_handled_total[5m]) > 0`)
		}},
		{"production+observability", "monitoring", "alert on a renamed series", `references grpc_server_handling_seconds_buckets, which no service exports`, func(m *manifests) {
			r := &m.prometheusRules[0].Spec.Groups[0].Rules[1]
			r.Expr = intstr.FromString(strings.ReplaceAll(r.Expr.String(), "_bucket{", "_buckets{"))
		}},
		{"production+observability", "monitoring", "alert without severity", `severity "", want critical`, func(m *manifests) {
			delete(m.prometheusRules[0].Spec.Groups[0].Rules[2].Labels, "severity")
		}},
		{"production+observability", "monitoring", "alert without a description", `no description annotation`, func(m *manifests) {
			delete(m.prometheusRules[0].Spec.Groups[0].Rules[0].Annotations, "description")
		}},
		{"dev-patroni", "patroni", "asynchronous replication", `synchronous_mode is off`, func(m *manifests) {
			editConfig(m, "patroni-config", "patroni.yml", "synchronous_mode: true", "synchronous_mode: false")
		}},
		{"production+patroni", "patroni", "TTL shorter than a loop and two retries", `exceeds ttl 20`, func(m *manifests) {
			editConfig(m, "patroni-config", "patroni.yml", "ttl: 30", "ttl: 20")
		}},
		{"production+patroni", "patroni", "two pods", `2 replicas, want 3`, func(m *manifests) {
			statefulSet(m, "cart-db").Spec.Replicas = ptr.To[int32](2)
		}},
		{"production+patroni", "patroni", "scope that is not the pods' label", `Patroni would not find its pods`, func(m *manifests) {
			setEnv(&statefulSet(m, "customers-db").Spec.Template.Spec.Containers[0], "PATRONI_SCOPE", "customers")
		}},
		{"production+patroni", "patroni", "primary Service selects every pod", `no Service selects its primary (role=primary) alone`, func(m *manifests) {
			delete(m.service("customers-db-primary").Spec.Selector, "role")
		}},
		{"production+patroni", "patroni", "Patroni 3's role label value", `no Service selects its primary (role=master) alone`, func(m *manifests) {
			editConfig(m, "patroni-config", "patroni.yml", "leader_label_value: primary", "leader_label_value: master")
		}},
		{"production+patroni", "patroni", "Role without patching pods", `may not patch pods`, func(m *manifests) {
			m.roles[0].Rules[1].Verbs = []string{"get", "list", "update", "watch"}
		}},
		{"production+patroni", "patroni", "Role reading Secrets", `may [get] secrets`, func(m *manifests) {
			m.roles[0].Rules = append(m.roles[0].Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		}},
		{"production+patroni", "patroni", "no service account token", `Patroni cannot reach the Kubernetes API`, func(m *manifests) {
			statefulSet(m, "cart-db").Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(false)
		}},
		{"dev-patroni", "patroni", "DSN without target_session_attrs", `no target_session_attrs=read-write`, func(m *manifests) {
			editSecrets(m, "database-url", "&target_session_attrs=read-write", "")
		}},
		{"dev-patroni", "patroni", "DSN to the dev overlay's PostgreSQL", `reaches postgres, not StatefulSet customers-db's primary Service customers-db-primary`, func(m *manifests) {
			editSecrets(m, "database-url", "@customers-db-primary:", "@postgres:")
		}},
		{"dev-patroni+pgbouncer", "patroni", "PgBouncer in front of a standby", `reaches cart-db, not StatefulSet cart-db's primary Service`, func(m *manifests) {
			editSecrets(m, "databases.ini", "host=cart-db-primary", "host=cart-db")
		}},
		{"production+patroni", "containers", "token for a pod whose account has no Role", `automountServiceAccountToken is not false`, func(m *manifests) {
			m.deployment("customers").Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(true)
		}},
		{"production+patroni", "services", "primary Service on a port Patroni's pods lack", `targets pg`, func(m *manifests) {
			m.service("cart-db-primary").Spec.Ports[0].TargetPort = intstr.FromString("pg")
		}},
		{"production+patroni", "disruption budgets", "a budget that lets the synchronous standby go with the primary", `may take the synchronous standby`, func(m *manifests) {
			pdb(m, "customers-db").Spec.MinAvailable = ptr.To(intstr.FromInt32(1))
		}},
		{"production+patroni", "disruption budgets", "a budget that blocks every drain", `blocks every node drain`, func(m *manifests) {
			pdb(m, "cart-db").Spec.MinAvailable = ptr.To(intstr.FromInt32(3))
		}},
		{"production+patroni", "disruption budgets", "no budget for a database", `StatefulSet cart-db: no PodDisruptionBudget`, func(m *manifests) {
			m.pdbs = slices.DeleteFunc(m.pdbs, func(p *policyv1.PodDisruptionBudget) bool { return p.Name == "cart-db" })
		}},
		{"production+patroni", "patroni network policy", "Patroni's REST API open to the services", `opens Patroni's REST API (8008) to other pods`, func(m *manifests) {
			np := networkPolicy(m, "customers-db")
			np.Spec.Ingress[0].Ports = append(np.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromString("patroni"))})
		}},
		{"production+patroni", "patroni network policy", "PostgreSQL open to another namespace", `opens port 5432 beyond pods of this namespace`, func(m *manifests) {
			networkPolicy(m, "cart-db").Spec.Ingress[0].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}},
		{"production+patroni", "patroni network policy", "no way to the API server", `reach the Kubernetes API server`, func(m *manifests) {
			np := networkPolicy(m, "cart-db")
			np.Spec.Egress = np.Spec.Egress[:1]
		}},
		{"production+patroni", "patroni network policy", "the service cannot reach its database", `no NetworkPolicy lets Deployment customers reach it on 5432`, func(m *manifests) {
			np := networkPolicy(m, "customers")
			np.Spec.Egress = slices.DeleteFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return slices.ContainsFunc(r.To, func(p networkingv1.NetworkPolicyPeer) bool {
					return p.PodSelector != nil && p.PodSelector.MatchLabels["app.kubernetes.io/name"] == "customers-db"
				})
			})
		}},
		{"production+patroni", "patroni network policy", "standbys cannot stream from the primary", `no NetworkPolicy admits StatefulSet cart-db on 5432`, func(m *manifests) {
			networkPolicy(m, "cart-db").Spec.Ingress[1].Ports = networkPolicy(m, "cart-db").Spec.Ingress[1].Ports[1:]
		}},
	}
	vars := readEnvExample(t)
	byName := map[string]variant{}
	for _, v := range variants {
		byName[v.name] = v
	}
	checkNamed := map[string]check{}
	for _, c := range checks {
		checkNamed[c.name] = c
	}
	for _, tt := range tests {
		t.Run(tt.check+"/"+tt.name, func(t *testing.T) {
			c, ok := checkNamed[tt.check]
			if !ok {
				t.Fatalf("no check %q", tt.check)
			}
			m := build(t, byName[tt.variant])
			if p := c.run(m, vars); len(p) > 0 {
				t.Fatalf("%s fails before the breakage: %v", tt.variant, p)
			}
			tt.breakIt(m)
			p := c.run(m, vars)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("%s, broken: %s: got problems %q, want one saying %q", tt.variant, tt.name, p, tt.want)
			}
		})
	}
}

// container returns the first container of the Deployment name.
func container(m *manifests, deployment string) *corev1.Container {
	return &m.deployment(deployment).Spec.Template.Spec.Containers[0]
}

// configMap returns the ConfigMap generated as name (kustomize appends a hash).
func configMap(m *manifests, name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if strings.HasPrefix(c.Name, name+"-") || c.Name == name {
			return c
		}
	}
	return nil
}

// networkPolicy returns the NetworkPolicy name.
func networkPolicy(m *manifests, name string) *networkingv1.NetworkPolicy {
	for _, np := range m.networkPolicies {
		if np.Name == name {
			return np
		}
	}
	return nil
}

// statefulSet returns the StatefulSet name.
func statefulSet(m *manifests, name string) *appsv1.StatefulSet {
	for _, s := range m.statefulSets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// pdb returns the PodDisruptionBudget name.
func pdb(m *manifests, name string) *policyv1.PodDisruptionBudget {
	for _, p := range m.pdbs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// editConfig replaces old with new in the file key of the ConfigMap generated as name.
func editConfig(m *manifests, name, key, old, new string) {
	cm := configMap(m, name)
	cm.Data[key] = strings.ReplaceAll(cm.Data[key], old, new)
}

// editSecrets replaces old with new in the value of key in every Secret of the build.
func editSecrets(m *manifests, key, old, new string) {
	for _, s := range m.secrets {
		if v, ok := s.Data[key]; ok {
			s.Data[key] = []byte(strings.ReplaceAll(string(v), old, new))
		}
	}
}

// setEnv sets a literal value for name in c's env.
func setEnv(c *corev1.Container, name, value string) {
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
}

// certificateNamed returns the Certificate name.
func certificateNamed(m *manifests, name string) *certificate {
	for _, c := range m.certificates {
		if c.Name == name {
			return c
		}
	}
	return nil
}
