package deploy

import (
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Nothing enforces NetworkPolicy on make test-k8s's control plane (kwok has no network
// plugin), so the policies are checked here against what the workloads do: the test lists every
// connection each workload makes or answers, from its settings, and compares the list with what
// the built policies allow between every pair of endpoints, both ways. A connection the
// settings make that the policies deny is an outage; one the policies allow that no setting
// makes is a hole.

// endpoint is a pod or an address a connection can start or end at.
type endpoint struct {
	name string
	// A pod: its namespace (and that namespace's labels) and labels. inBuild: the build runs it,
	// so the build's policies apply to it.
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
	inBuild   bool
	// An address outside the cluster.
	addr netip.Addr
	// The ports it listens on.
	ports []corev1.ContainerPort
	// w is the workload of a pod the build runs.
	w *workload
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// connection is one connection a workload makes, and the setting that makes it.
type connection struct {
	from, to *endpoint
	port     int32
	proto    corev1.Protocol
	why      string
}

func (c connection) String() string {
	return fmt.Sprintf("%s -> %s:%d/%s", c.from.name, c.to.name, c.port, c.proto)
}

// network is shop-network, the ConfigMap overlays/production/network.yaml that tells the
// production overlay about the cluster.
func network(t testing.TB) map[string]string {
	var cm corev1.ConfigMap
	readYAML(t, filepath.Join("overlays", "production", "network.yaml"), &cm)
	return cm.Data
}

// secretsAsDocumented are the values overlays/production/kustomization.yaml and
// docs/deploy.md tell operators to put in the Secrets the build references but does not hold:
// the hosts the services reach through them.
var secretsAsDocumented = map[string]string{
	"customers-secrets/database-url":        "postgres://customers@db.internal:5432/customers?sslmode=verify-full",
	"cart-secrets/database-url":             "postgres://cart@db.internal:5432/cart?sslmode=verify-full",
	"customers-secrets/pooled-database-url": "postgres://customers@customers-pgbouncer:5432/customers?default_query_exec_mode=exec",
	"cart-secrets/pooled-database-url":      "postgres://cart@cart-pgbouncer:5432/cart?default_query_exec_mode=exec",
	"customers-secrets/nats-url":            "nats://customers@nats-0.nats.internal:4222,nats://customers@nats-1.nats.internal:4222",
	"cart-secrets/nats-url":                 "nats://cart@nats-0.nats.internal:4222,nats://cart@nats-1.nats.internal:4222",
}

// documentedSecret is the documented value of the Secret name's key: with components/patroni,
// the database is its primary Service (components/patroni/kustomization.yaml).
func (w *world) documentedSecret(name, key string) (string, bool) {
	svc := strings.TrimSuffix(name, "-secrets")
	if key == "database-url" && w.m.service(svc+"-db-primary") != nil {
		return "postgres://" + svc + "@" + svc + "-db-primary:5432/" + svc + "?target_session_attrs=read-write", true
	}
	v, ok := secretsAsDocumented[name+"/"+key]
	return v, ok
}

// world is every endpoint of one variant: its pods, and the pods and addresses around them.
type world struct {
	m         *manifests
	namespace string
	endpoints []*endpoint
	byName    map[string]*endpoint
}

func newWorld(t testing.TB, m *manifests) *world {
	t.Helper()
	net := network(t)
	ns := "shop"
	if len(m.namespaces) > 0 {
		ns = m.namespaces[0].Name
	}
	w := &world{m: m, namespace: ns, byName: map[string]*endpoint{}}
	add := func(e *endpoint) {
		w.endpoints = append(w.endpoints, e)
		w.byName[e.name] = e
	}
	for _, wl := range m.workloads() {
		if !wl.serving {
			continue
		}
		e := &endpoint{name: wl.name, namespace: ns, labels: wl.pod.Labels, inBuild: true, w: &wl}
		for _, c := range wl.pod.Spec.Containers {
			e.ports = append(e.ports, c.Ports...)
		}
		add(e)
	}
	tcp := func(ports ...int32) []corev1.ContainerPort {
		var out []corev1.ContainerPort
		for _, p := range ports {
			out = append(out, corev1.ContainerPort{ContainerPort: p, Protocol: corev1.ProtocolTCP})
		}
		return out
	}
	pod := func(name, namespace string, labels map[string]string, ports []corev1.ContainerPort) {
		add(&endpoint{name: name, namespace: namespace, labels: labels, ports: ports})
	}
	first := func(cidr string) netip.Addr {
		p, err := netip.ParsePrefix(net[cidr])
		if err != nil {
			t.Fatalf("network.yaml %s: %v", cidr, err)
		}
		return p.Masked().Addr().Next()
	}
	pod("ingress controller", net["ingress-namespace"], map[string]string{"app.kubernetes.io/name": net["ingress-pod-name"]}, tcp(443))
	pod("prometheus", "monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}, tcp(9090))
	pod("opentelemetry collector", "monitoring", map[string]string{"app.kubernetes.io/name": "opentelemetry-collector"}, tcp(4317, 4318))
	pod("kube-dns", "kube-system", map[string]string{"k8s-app": "kube-dns"},
		[]corev1.ContainerPort{{ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {ContainerPort: 53, Protocol: corev1.ProtocolTCP}})
	// Pods that must get nowhere: one of the namespace with no role here, and impostors that
	// carry a trusted pod's labels in another namespace.
	pod("another pod of the namespace", ns, map[string]string{"app.kubernetes.io/name": "debug"}, tcp(8080))
	pod("another pod of the ingress controller's namespace", net["ingress-namespace"], map[string]string{"app.kubernetes.io/name": "other"}, tcp(8080))
	pod("an ingress controller's impostor", "default", map[string]string{"app.kubernetes.io/name": net["ingress-pod-name"]}, tcp(8080))
	pod("a Prometheus impostor", "default", map[string]string{"app.kubernetes.io/name": "prometheus"}, tcp(9090))
	pod("a cart impostor", "default", map[string]string{"app.kubernetes.io/name": "cart", "app.kubernetes.io/component": "server"}, tcp(8082))
	add(&endpoint{name: "the database", addr: first("database-cidr"), ports: tcp(5432)})
	add(&endpoint{name: "NATS", addr: first("nats-cidr"), ports: tcp(4222)})
	add(&endpoint{name: "the internet", addr: netip.MustParseAddr("203.0.113.10"), ports: tcp(443, 5432, 4222, 53)})
	for _, e := range w.endpoints {
		e.nsLabels = map[string]string{"kubernetes.io/metadata.name": e.namespace}
	}
	return w
}

// needed lists the connections the variant's settings make.
func (w *world) needed(t testing.TB) []connection {
	t.Helper()
	var out []connection
	need := func(from, to *endpoint, port int32, proto corev1.Protocol, why string) {
		if from == nil || to == nil {
			t.Fatalf("%s: no endpoint", why)
		}
		out = append(out, connection{from: from, to: to, port: port, proto: proto, why: why})
	}
	ingress, prometheus := w.byName["ingress controller"], w.byName["prometheus"]
	for _, e := range w.endpoints {
		if !e.inBuild {
			continue
		}
		need(e, w.byName["kube-dns"], 53, corev1.ProtocolUDP, "every pod resolves names")
		need(e, w.byName["kube-dns"], 53, corev1.ProtocolTCP, "every pod resolves names")
		containers := append(slices.Clone(e.w.pod.Spec.InitContainers), e.w.pod.Spec.Containers...)
		for i := range containers {
			c := &containers[i]
			if c.Name == "pgbouncer" {
				// Its servers (a Secret's databases.ini): components/patroni's primary, or the
				// external database.
				svc := strings.TrimSuffix(e.name, "-pgbouncer")
				to, port := w.byName["the database"], int32(5432)
				if w.m.service(svc+"-db-primary") != nil {
					to, port = w.resolve(t, "postgres://"+svc+"@"+svc+"-db-primary:5432/"+svc)
				}
				need(e, to, port, corev1.ProtocolTCP, "PgBouncer's servers")
				continue
			}
			prefix := shopPrefix(c.Image)
			if prefix == "" {
				continue
			}
			env, _ := w.m.env(c)
			value := func(name string) string {
				v := env[name]
				if v.secret != nil {
					s, ok := w.documentedSecret(v.secret.Name, v.secret.Key)
					if !ok {
						t.Fatalf("%s %s: %s from Secret %s key %s, whose documented value this test does not know", e.name, c.Name, name, v.secret.Name, v.secret.Key)
					}
					return s
				}
				return v.value
			}
			// migrate (an init container) opens the database and nothing else.
			serving := c.Name == e.w.pod.Spec.Containers[0].Name
			urls := []string{prefix + "_DATABASE_URL"}
			if serving {
				urls = append(urls, prefix+"_NATS_URL")
			}
			for _, name := range urls {
				for _, u := range strings.Split(value(name), ",") {
					if u == "" {
						continue
					}
					to, port := w.resolve(t, u)
					need(e, to, port, corev1.ProtocolTCP, c.Name+" "+name)
				}
			}
			if !serving {
				continue
			}
			if addr := value("CART_CUSTOMERS_ADDR"); prefix == "CART" && addr != "" {
				to, port := w.resolve(t, "grpc://"+strings.TrimPrefix(addr, "dns:///"))
				need(e, to, port, corev1.ProtocolTCP, c.Name+" CART_CUSTOMERS_ADDR")
			}
			if addr := value("OTEL_EXPORTER_OTLP_ENDPOINT"); addr != "" {
				to, port := w.resolve(t, addr)
				need(e, to, port, corev1.ProtocolTCP, c.Name+" OTEL_EXPORTER_OTLP_ENDPOINT")
			}
			{
				// What the serving container answers: REST (and cart's gRPC API) through the
				// ingress controller, metrics to Prometheus.
				for _, p := range c.Ports {
					switch {
					case p.Name == "http", p.Name == "grpc" && prefix == "CART":
						need(ingress, e, p.ContainerPort, corev1.ProtocolTCP, "the public API, through the Gateway")
					case p.Name == "metrics":
						need(prometheus, e, p.ContainerPort, corev1.ProtocolTCP, prefix+"_METRICS_ADDR, scraped")
					}
				}
				// Spans are allowed ahead to the collector, so that turning tracing on
				// (OTEL_EXPORTER_OTLP_ENDPOINT) is a setting, not a policy change.
				for _, p := range []int32{4317, 4318} {
					need(e, w.byName["opentelemetry collector"], p, corev1.ProtocolTCP, "OTLP, allowed ahead")
				}
			}
		}
	}
	return out
}

// resolve returns where the URL u connects: a pod of the build behind a Service it names, or
// the external database or NATS.
func (w *world) resolve(t testing.TB, u string) (*endpoint, int32) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("%q: %v", u, err)
	}
	host, port := parsed.Hostname(), int32(0)
	if _, err := fmt.Sscan(parsed.Port(), &port); err != nil {
		t.Fatalf("%q: no port", u)
	}
	name, _, _ := strings.Cut(host, ".")
	inCluster := host == name || strings.HasPrefix(host, name+"."+w.namespace+".svc") || host == name+"."+w.namespace
	if s := w.m.service(name); s != nil && inCluster {
		for _, sp := range s.Spec.Ports {
			if sp.Port != port {
				continue
			}
			// Patroni labels the leader's pod role=primary at run time; any pod of the
			// StatefulSet may become it.
			selector := maps.Clone(s.Spec.Selector)
			delete(selector, "role")
			for _, e := range w.endpoints {
				if e.inBuild && selects(&metav1.LabelSelector{MatchLabels: selector}, e.labels) {
					return e, containerPort(&e.w.pod.Spec.Containers[0], sp.TargetPort)
				}
			}
		}
		t.Fatalf("%q: Service %s selects no pod of the build on port %d", u, name, port)
	}
	switch parsed.Scheme {
	case "postgres", "postgresql":
		return w.byName["the database"], port
	case "nats":
		return w.byName["NATS"], port
	case "http", "https":
		if strings.Contains(host, "collector") {
			return w.byName["opentelemetry collector"], port
		}
	}
	t.Fatalf("%q: where this connects is not known to the test", u)
	return nil, 0
}

// allowed reports whether the build's policies let from open a connection to to's port.
func (w *world) allowed(from, to *endpoint, port int32, proto corev1.Protocol) bool {
	return w.admits(from, to, port, proto, networkingv1.PolicyTypeEgress) &&
		w.admits(to, from, port, proto, networkingv1.PolicyTypeIngress)
}

// admits reports whether the policies selecting self allow the connection with peer, in the
// direction dir (egress: self connects to peer's port; ingress: peer connects to self's port).
func (w *world) admits(self, peer *endpoint, port int32, proto corev1.Protocol, dir networkingv1.PolicyType) bool {
	if !self.inBuild {
		return true // not the build's to restrict
	}
	target := self
	if dir == networkingv1.PolicyTypeEgress {
		target = peer
	}
	isolated := false
	for _, np := range w.m.networkPolicies {
		if !slices.Contains(policyTypes(np), dir) || !selects(&np.Spec.PodSelector, self.labels) {
			continue
		}
		isolated = true
		type rule struct {
			ports []networkingv1.NetworkPolicyPort
			peers []networkingv1.NetworkPolicyPeer
		}
		var rules []rule
		if dir == networkingv1.PolicyTypeEgress {
			for _, r := range np.Spec.Egress {
				rules = append(rules, rule{r.Ports, r.To})
			}
		} else {
			for _, r := range np.Spec.Ingress {
				rules = append(rules, rule{r.Ports, r.From})
			}
		}
		for _, r := range rules {
			if matchesPort(r.ports, target, port, proto) && w.matchesPeer(r.peers, peer) {
				return true
			}
		}
	}
	return !isolated
}

func matchesPort(ports []networkingv1.NetworkPolicyPort, target *endpoint, port int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != proto || p.Protocol == nil && proto != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		n := p.Port.IntVal
		if p.Port.StrVal != "" {
			n = 0
			for _, cp := range target.ports {
				if cp.Name == p.Port.StrVal && protocol(cp.Protocol) == proto {
					n = cp.ContainerPort
				}
			}
		}
		if n == port || p.EndPort != nil && n <= port && port <= *p.EndPort {
			return true
		}
	}
	return false
}

func (w *world) matchesPeer(peers []networkingv1.NetworkPolicyPeer, e *endpoint) bool {
	if len(peers) == 0 {
		return true
	}
	for _, p := range peers {
		if p.IPBlock != nil {
			// Pods are not matched by ipBlock here: how a plugin treats pod addresses in an
			// ipBlock is its own (the docs ask for the narrowest ranges).
			if !e.addr.IsValid() {
				continue
			}
			prefix, err := netip.ParsePrefix(p.IPBlock.CIDR)
			if err != nil || !prefix.Contains(e.addr) {
				continue
			}
			if slices.ContainsFunc(p.IPBlock.Except, func(x string) bool {
				px, err := netip.ParsePrefix(x)
				return err == nil && px.Contains(e.addr)
			}) {
				continue
			}
			return true
		}
		if e.addr.IsValid() {
			continue // a selector matches pods only
		}
		if p.NamespaceSelector == nil && e.namespace != w.namespace {
			continue
		}
		if p.NamespaceSelector != nil && !selectsAll(p.NamespaceSelector, e.nsLabels) {
			continue
		}
		if p.PodSelector != nil && !selectsAll(p.PodSelector, e.labels) {
			continue
		}
		return true
	}
	return false
}

// selectsAll is selects with an empty selector meaning everything, as in a policy's peer.
func selectsAll(sel *metav1.LabelSelector, l map[string]string) bool {
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return true
	}
	return selects(sel, l)
}

// checkConnections: in production, the policies allow exactly the connections the settings make.
func checkConnections(t testing.TB, m *manifests) []string {
	w := newWorld(t, m)
	needed := w.needed(t)
	var problems []string
	for _, c := range needed {
		if !w.allowed(c.from, c.to, c.port, c.proto) {
			problems = append(problems, fmt.Sprintf("denied but needed (%s): %s", c.why, c))
		}
	}
	isNeeded := func(from, to *endpoint, port int32, proto corev1.Protocol) bool {
		return slices.ContainsFunc(needed, func(c connection) bool {
			return c.from == from && c.to == to && c.port == port && c.proto == proto
		})
	}
	for _, from := range w.endpoints {
		for _, to := range w.endpoints {
			if from == to || !from.inBuild && !to.inBuild {
				continue
			}
			for _, p := range to.ports {
				proto := protocol(p.Protocol)
				if w.allowed(from, to, p.ContainerPort, proto) && !isNeeded(from, to, p.ContainerPort, proto) {
					problems = append(problems, fmt.Sprintf("allowed but no setting needs it: %s", connection{from: from, to: to, port: p.ContainerPort, proto: proto}))
				}
			}
		}
	}
	sort.Strings(problems)
	return problems
}

// TestNetworkPolicies compares, for every production variant, the connections the settings make
// with the ones the policies allow, both ways.
func TestNetworkPolicies(t *testing.T) {
	for _, v := range variants {
		if !v.production {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			m := build(t, v)
			for _, c := range newWorld(t, m).needed(t) {
				t.Logf("%s (%s)", c, c.why)
			}
			for _, p := range checkConnections(t, m) {
				t.Error(p)
			}
		})
	}
}

// TestNetworkPoliciesCatchBreakage: each way of the comparison fails when a policy is broken.
func TestNetworkPoliciesCatchBreakage(t *testing.T) {
	var production variant
	for _, v := range variants {
		if v.name == "production+pgbouncer" {
			production = v
		}
	}
	tests := []struct {
		name, want string
		breakIt    func(m *manifests)
	}{
		{"no DNS", "denied but needed (every pod resolves names): cart -> kube-dns:53/UDP", func(m *manifests) {
			m.networkPolicies = slices.DeleteFunc(m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "dns" })
		}},
		{"a policy without egress rules, default deny left", "denied but needed (customers CUSTOMERS_NATS_URL): customers -> NATS:4222/TCP", func(m *manifests) {
			networkPolicy(m, "customers").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		}},
		{"a policy without egress rules, no default deny", "allowed but no setting needs it: customers -> the internet:443/TCP", func(m *manifests) {
			networkPolicy(m, "customers").Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			m.networkPolicies = slices.DeleteFunc(m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "default-deny" || np.Name == "dns" })
		}},
		{"customers' gRPC open to the namespace", "allowed but no setting needs it: another pod of the namespace -> customers:50051/TCP", func(m *manifests) {
			networkPolicy(m, "customers").Spec.Ingress[1].From[0].PodSelector = &metav1.LabelSelector{}
		}},
		{"ingress controller as two peers", "allowed but no setting needs it: another pod of the ingress controller's namespace -> customers:8081/TCP", func(m *manifests) {
			r := &networkPolicy(m, "customers").Spec.Ingress[0]
			p := r.From[0]
			r.From = []networkingv1.NetworkPolicyPeer{{NamespaceSelector: p.NamespaceSelector}, {PodSelector: p.PodSelector}}
		}},
		{"cart cannot reach customers", "denied but needed (cart CART_CUSTOMERS_ADDR): cart -> customers:50051/TCP", func(m *manifests) {
			np := networkPolicy(m, "cart")
			np.Spec.Egress = slices.DeleteFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return len(r.To) > 0 && r.To[0].PodSelector != nil && r.To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] == "customers"
			})
		}},
		{"PgBouncer open to cart", "allowed but no setting needs it: cart -> customers-pgbouncer:5432/TCP", func(m *manifests) {
			np := networkPolicy(m, "cart")
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "pgbouncer"}}}}})
			networkPolicy(m, "customers-pgbouncer").Spec.Ingress[0].From[0].PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/component": "server"}}
		}},
		{"database range too wide", "allowed but no setting needs it: customers -> the internet:5432/TCP", func(m *manifests) {
			networkPolicy(m, "customers").Spec.Egress[0].To[0].IPBlock.CIDR = "0.0.0.0/0"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := build(t, production)
			if p := checkConnections(t, m); len(p) > 0 {
				t.Fatalf("fails before the breakage: %q", p)
			}
			tt.breakIt(m)
			p := checkConnections(t, m)
			if !slices.Contains(p, tt.want) {
				t.Errorf("got problems %q, want %q", p, tt.want)
			}
		})
	}
}

// checkTrustedProxies: in production both services sit behind the ingress controller, so each
// believes X-Forwarded-For from the range its pods come from (else the whole site is one client
// to the abuse limits), and an HTTPRoute sends each service's REST paths to its REST Service.
// Who may send those headers is TestNetworkPolicies' to check: the ingress controller's pods
// alone reach the REST ports.
func checkTrustedProxies(m *manifests, _ envExample) []string {
	if !m.variant.production {
		return nil
	}
	var problems []string
	for _, prefix := range []string{"CUSTOMERS", "CART"} {
		w := m.servingPods(prefix)
		if w == nil {
			problems = append(problems, "no Deployment runs "+prefix)
			continue
		}
		c := shopContainers(*w)[prefix]
		env, _ := m.env(c)
		v := env[prefix+"_TRUSTED_PROXIES"]
		if v.value == "" {
			problems = append(problems, fmt.Sprintf("%s: %s_TRUSTED_PROXIES is not set: behind the ingress controller every client would have its address", w, prefix))
		}
		for _, p := range strings.Split(v.value, ",") {
			if _, err := netip.ParsePrefix(strings.TrimSpace(p)); v.value != "" && err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s_TRUSTED_PROXIES %q: %v", w, prefix, v.value, err))
			}
		}
		httpPort := int32(0)
		for _, p := range c.Ports {
			if p.Name == "http" {
				httpPort = p.ContainerPort
			}
		}
		routed := false
		for _, r := range m.httpRoutes {
			for _, rule := range r.Spec.Rules {
				for _, b := range rule.BackendRefs {
					s := m.service(b.Name)
					if s == nil {
						problems = append(problems, fmt.Sprintf("HTTPRoute %s: backend %s is no Service of the build", r.Name, b.Name))
						continue
					}
					for _, sp := range s.Spec.Ports {
						if sp.Port == b.Port && selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.pod.Labels) && servingPort(*w, sp) == httpPort {
							routed = true
						}
					}
				}
			}
		}
		if !routed {
			problems = append(problems, fmt.Sprintf("%s: no HTTPRoute sends requests to its REST port", w))
		}
	}
	return problems
}
