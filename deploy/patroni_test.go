package deploy

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// patroniConfig is what the checks read of Patroni's configuration file (components/patroni,
// patroni.yml).
type patroniConfig struct {
	Kubernetes struct {
		UseEndpoints       bool              `json:"use_endpoints"`
		Labels             map[string]string `json:"labels"`
		ScopeLabel         string            `json:"scope_label"`
		RoleLabel          string            `json:"role_label"`
		LeaderLabelValue   string            `json:"leader_label_value"`
		FollowerLabelValue string            `json:"follower_label_value"`
	} `json:"kubernetes"`
	Bootstrap struct {
		DCS struct {
			TTL                  int  `json:"ttl"`
			LoopWait             int  `json:"loop_wait"`
			RetryTimeout         int  `json:"retry_timeout"`
			SynchronousMode      bool `json:"synchronous_mode"`
			SynchronousNodeCount int  `json:"synchronous_node_count"`
		} `json:"dcs"`
	} `json:"bootstrap"`
}

// patroniCluster is a StatefulSet whose pods run Patroni.
type patroniCluster struct {
	w        workload
	replicas int32
	conf     patroniConfig
	// env is the Patroni container's environment.
	env map[string]envValue
}

func (p patroniCluster) String() string { return p.w.String() }

// patroniClusters returns the StatefulSets that run Patroni: a container started with a
// patroni.yml from a mounted ConfigMap. Patroni's defaults fill what the file leaves out.
func (m *manifests) patroniClusters() ([]patroniCluster, []string) {
	var out []patroniCluster
	var problems []string
	for _, s := range m.statefulSets {
		w := workload{kind: "StatefulSet", name: s.Name, pod: &s.Spec.Template, serving: true}
		for i := range s.Spec.Template.Spec.Containers {
			c := &s.Spec.Template.Spec.Containers[i]
			file := m.mountedConfigFile(w, c, "patroni.yml")
			if file == nil {
				continue
			}
			p := patroniCluster{w: w, replicas: 1}
			if s.Spec.Replicas != nil {
				p.replicas = *s.Spec.Replicas
			}
			if err := yaml.Unmarshal([]byte(*file), &p.conf); err != nil {
				problems = append(problems, fmt.Sprintf("%s: patroni.yml: %v", w, err))
				continue
			}
			k := &p.conf.Kubernetes
			for field, def := range map[*string]string{&k.ScopeLabel: "cluster-name", &k.RoleLabel: "role", &k.LeaderLabelValue: "primary", &k.FollowerLabelValue: "replica"} {
				if *field == "" {
					*field = def
				}
			}
			p.env, _ = m.env(c)
			out = append(out, p)
		}
	}
	return out, problems
}

// mountedConfigFile returns the content of the file name that c is started with (an argument
// ending in /name) when it comes from a ConfigMap of the build mounted in c.
func (m *manifests) mountedConfigFile(w workload, c *corev1.Container, name string) *string {
	for _, arg := range append(slices.Clone(c.Command), c.Args...) {
		if path.Base(arg) != name {
			continue
		}
		for _, vm := range c.VolumeMounts {
			if path.Clean(vm.MountPath) != path.Dir(arg) {
				continue
			}
			for _, v := range w.pod.Spec.Volumes {
				if v.Name != vm.Name || v.ConfigMap == nil {
					continue
				}
				if cm := m.configMap(v.ConfigMap.Name); cm != nil {
					if data, ok := cm.Data[name]; ok {
						return &data
					}
				}
			}
		}
	}
	return nil
}

// roleLabels are w's pod labels as Patroni labels the pod when it holds role (a label value).
func (p patroniCluster) roleLabels(value string) map[string]string {
	out := maps.Clone(p.w.pod.Labels)
	out[p.conf.Kubernetes.RoleLabel] = value
	return out
}

// leaderLabels are the labels of w's pods as they are when serving: for Patroni's pods, those
// of the primary (Patroni adds its role label).
func (m *manifests) leaderLabels(w workload) map[string]string {
	clusters, _ := m.patroniClusters()
	for _, p := range clusters {
		if p.w.pod == w.pod {
			return p.roleLabels(p.conf.Kubernetes.LeaderLabelValue)
		}
	}
	return w.pod.Labels
}

// primaryService returns the Service that routes to p's primary and to none of its standbys.
func (m *manifests) primaryService(p patroniCluster) *corev1.Service {
	for _, s := range m.services {
		sel := &metav1.LabelSelector{MatchLabels: s.Spec.Selector}
		if len(s.Spec.Selector) > 0 && selects(sel, p.roleLabels(p.conf.Kubernetes.LeaderLabelValue)) &&
			!selects(sel, p.roleLabels(p.conf.Kubernetes.FollowerLabelValue)) && !selects(sel, p.w.pod.Labels) {
			return s
		}
	}
	return nil
}

func (m *manifests) roleBinding(serviceAccount string) *rbacv1.RoleBinding {
	for _, rb := range m.roleBindings {
		for _, s := range rb.Subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == serviceAccount {
				return rb
			}
		}
	}
	return nil
}

// granted returns the verbs the Role bound to serviceAccount grants on a core resource.
func (m *manifests) granted(serviceAccount, resource string) []string {
	rb := m.roleBinding(serviceAccount)
	if rb == nil || rb.RoleRef.Kind != "Role" {
		return nil
	}
	var verbs []string
	for _, r := range m.roles {
		if r.Name != rb.RoleRef.Name {
			continue
		}
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, "") && (slices.Contains(rule.Resources, resource) || slices.Contains(rule.Resources, "*")) {
				verbs = append(verbs, rule.Verbs...)
			}
		}
	}
	return verbs
}

// patroniNeeds are the verbs Patroni's Kubernetes store needs with use_endpoints off: its
// leader lock and state in ConfigMaps, its role label and status on its own pod.
var patroniNeeds = map[string][]string{
	"configmaps": {"create", "get", "list", "patch", "update", "watch"},
	"pods":       {"get", "list", "patch", "update", "watch"},
}

// checkPatroni: every Patroni cluster runs three or more pods in synchronous mode with timings
// Patroni accepts, finds its own pods by its labels, may do what its store needs through the API
// (and may not read Secrets), and has a Service that selects its primary alone; the services'
// DSNs in the build reach their cluster's primary (directly or through PgBouncer) with
// target_session_attrs=read-write.
func checkPatroni(m *manifests, _ envExample) []string {
	clusters, problems := m.patroniClusters()
	for _, p := range clusters {
		k, dcs := p.conf.Kubernetes, p.conf.Bootstrap.DCS
		if p.replicas < 3 {
			problems = append(problems, fmt.Sprintf("%s: %d replicas, want 3: a primary, a synchronous standby and one to spare", p, p.replicas))
		}
		if !dcs.SynchronousMode {
			problems = append(problems, fmt.Sprintf("%s: synchronous_mode is off: a failover may lose acknowledged writes", p))
		}
		if dcs.SynchronousNodeCount > int(p.replicas)-1 {
			problems = append(problems, fmt.Sprintf("%s: synchronous_node_count %d with %d pods", p, dcs.SynchronousNodeCount, p.replicas))
		}
		if ttl, loop, retry := cmpDefault(dcs.TTL, 30), cmpDefault(dcs.LoopWait, 10), cmpDefault(dcs.RetryTimeout, 10); loop+2*retry > ttl {
			problems = append(problems, fmt.Sprintf("%s: loop_wait %d + 2 x retry_timeout %d exceeds ttl %d: the primary demotes itself on one slow API call", p, loop, retry, ttl))
		}
		if k.UseEndpoints {
			problems = append(problems, fmt.Sprintf("%s: use_endpoints: the primary Service, the RBAC and the docs assume ConfigMaps", p))
		}
		scope := p.env["PATRONI_SCOPE"].value
		if got := p.w.pod.Labels[k.ScopeLabel]; scope == "" || got != scope {
			problems = append(problems, fmt.Sprintf("%s: PATRONI_SCOPE %q, pod label %s %q: Patroni would not find its pods", p, scope, k.ScopeLabel, got))
		}
		for key, v := range k.Labels {
			if p.w.pod.Labels[key] != v {
				problems = append(problems, fmt.Sprintf("%s: pods lack Patroni's label %s=%s", p, key, v))
			}
		}
		if m.primaryService(p) == nil {
			problems = append(problems, fmt.Sprintf("%s: no Service selects its primary (%s=%s) alone", p, k.RoleLabel, k.LeaderLabelValue))
		}
		spec := p.w.pod.Spec
		if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
			problems = append(problems, fmt.Sprintf("%s: automountServiceAccountToken is false: Patroni cannot reach the Kubernetes API", p))
		}
		for resource, needs := range patroniNeeds {
			verbs := m.granted(spec.ServiceAccountName, resource)
			if !slices.Contains(verbs, "*") {
				for _, v := range needs {
					if !slices.Contains(verbs, v) {
						problems = append(problems, fmt.Sprintf("%s: service account %q may not %s %s", p, spec.ServiceAccountName, v, resource))
					}
				}
			}
		}
		if verbs := m.granted(spec.ServiceAccountName, "secrets"); len(verbs) > 0 {
			problems = append(problems, fmt.Sprintf("%s: service account %q may %v secrets, which Patroni never needs", p, spec.ServiceAccountName, verbs))
		}
	}
	return append(problems, m.checkPatroniDSNs(clusters)...)
}

func cmpDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// checkPatroniDSNs: with Patroni in the build, every service DSN the build holds reaches the
// primary Service of the cluster that has the DSN's role (APP_USER), directly or through a
// PgBouncer whose upstream is that Service, and asks for a writable server.
func (m *manifests) checkPatroniDSNs(clusters []patroniCluster) []string {
	if len(clusters) == 0 {
		return nil
	}
	var problems []string
	for _, w := range m.workloads() {
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			ref := env[prefix+"_DATABASE_URL"].secret
			if ref == nil {
				continue
			}
			dsn, _, found := m.secretValue(ref.Name, ref.Key)
			if !found {
				continue // production: the operator's Secret (documented in the component)
			}
			at := fmt.Sprintf("%s: %s_DATABASE_URL (%s)", w, prefix, ref.Key)
			u, err := url.Parse(dsn)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", at, err))
				continue
			}
			if u.Query().Get("target_session_attrs") != "read-write" {
				problems = append(problems, at+": no target_session_attrs=read-write: a connection made to a demoted primary would take writes it refuses")
			}
			i := slices.IndexFunc(clusters, func(p patroniCluster) bool { return p.env["APP_USER"].value == u.User.Username() })
			if i < 0 {
				problems = append(problems, fmt.Sprintf("%s: no Patroni cluster creates the role %s", at, u.User.Username()))
				continue
			}
			primary := m.primaryService(clusters[i])
			if primary == nil {
				continue // reported by checkPatroni
			}
			host := u.Hostname()
			if upstream, ok := m.pgbouncerUpstream(host); ok {
				host = upstream
			}
			if host != primary.Name {
				problems = append(problems, fmt.Sprintf("%s: reaches %s, not %s's primary Service %s", at, host, clusters[i], primary.Name))
			}
		}
	}
	return problems
}

// pgbouncerUpstream returns the host in databases.ini of the PgBouncer behind the Service
// named service, when the build has it.
func (m *manifests) pgbouncerUpstream(service string) (string, bool) {
	s := m.service(service)
	if s == nil || len(s.Spec.Selector) == 0 {
		return "", false
	}
	for _, w := range m.workloads() {
		if !selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.pod.Labels) {
			continue
		}
		for _, v := range w.pod.Spec.Volumes {
			if v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if src.Secret == nil {
					continue
				}
				ini, _, found := m.secretValue(src.Secret.Name, "databases.ini")
				if !found {
					continue
				}
				for _, line := range strings.Split(ini, "\n") {
					_, conn, ok := strings.Cut(line, "=")
					if !ok {
						continue
					}
					for _, f := range strings.Fields(conn) {
						if h, ok := strings.CutPrefix(f, "host="); ok {
							return h, true
						}
					}
				}
			}
		}
	}
	return "", false
}

// checkPatroniDisruptionBudgets: a PodDisruptionBudget keeps the primary and a synchronous
// standby of every Patroni cluster (two pods) while leaving room to evict one.
func (m *manifests) checkPatroniDisruptionBudgets() []string {
	clusters, _ := m.patroniClusters()
	var problems []string
	for _, p := range clusters {
		found := false
		for _, pdb := range m.pdbs {
			if !selects(pdb.Spec.Selector, p.w.pod.Labels) {
				continue
			}
			found = true
			minAvailable := -1
			switch mu, ma := pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable; {
			case ma != nil && ma.Type == intstr.Int:
				minAvailable = int(ma.IntVal)
			case mu != nil && mu.Type == intstr.Int:
				minAvailable = int(p.replicas - mu.IntVal)
			}
			switch {
			case minAvailable < 0:
				problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s: give minAvailable as a number of pods", pdb.Name))
			case minAvailable < 2:
				problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s: %d of %d pods may remain: an eviction may take the synchronous standby with the primary", pdb.Name, minAvailable, p.replicas))
			case minAvailable >= int(p.replicas):
				problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s: all %d pods must remain, which blocks every node drain", pdb.Name, p.replicas))
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s: no PodDisruptionBudget selects its pods", p))
		}
	}
	return problems
}

// checkPatroniNetworkPolicy: the Patroni pods accept PostgreSQL connections from their service
// and peers only, and Patroni's REST API from peers only; they may reach their peers and the
// Kubernetes API server; the service's pods may reach them on 5432.
func checkPatroniNetworkPolicy(m *manifests, _ envExample) []string {
	clusters, problems := m.patroniClusters()
	for _, p := range clusters {
		user := p.env["APP_USER"].value
		service := m.servingPods(strings.ToUpper(user))
		if service == nil {
			problems = append(problems, fmt.Sprintf("%s: APP_USER %q is no service of the build", p, user))
			continue
		}
		pg, rest := containerPortNamed(p.w, "postgres"), containerPortNamed(p.w, "patroni")
		in := m.ingressRules(p.w)
		if len(in) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy restricts ingress to its pods", p))
			continue
		}
		for _, want := range []struct {
			from workload
			port int32
		}{{*service, pg}, {p.w, pg}, {p.w, rest}} {
			if !slices.ContainsFunc(in, func(r networkingv1.NetworkPolicyIngressRule) bool {
				return opensPort(r.Ports, p.w, want.port) && slices.ContainsFunc(r.From, samePods(want.from))
			}) {
				problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy admits %s on %d", p, want.from, want.port))
			}
		}
		for _, r := range in {
			for _, port := range []int32{pg, rest} {
				if !opensPort(r.Ports, p.w, port) {
					continue
				}
				if len(r.From) == 0 || slices.ContainsFunc(r.From, func(peer networkingv1.NetworkPolicyPeer) bool {
					return peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil ||
						(len(peer.PodSelector.MatchLabels) == 0 && len(peer.PodSelector.MatchExpressions) == 0)
				}) {
					problems = append(problems, fmt.Sprintf("%s: a NetworkPolicy opens port %d beyond pods of this namespace it names", p, port))
				}
				if port == rest && !slices.ContainsFunc(r.From, samePods(p.w)) {
					problems = append(problems, fmt.Sprintf("%s: a NetworkPolicy opens Patroni's REST API (%d) to other pods than its peers", p, port))
				}
			}
		}
		out := m.egressRules(p.w)
		for _, port := range []int32{pg, rest} {
			if !slices.ContainsFunc(out, func(r networkingv1.NetworkPolicyEgressRule) bool {
				return opensPort(r.Ports, p.w, port) && slices.ContainsFunc(r.To, samePods(p.w))
			}) {
				problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy lets its pods reach their peers on %d", p, port))
			}
		}
		if !slices.ContainsFunc(out, func(r networkingv1.NetworkPolicyEgressRule) bool {
			return slices.ContainsFunc(r.To, func(peer networkingv1.NetworkPolicyPeer) bool { return peer.IPBlock != nil })
		}) {
			problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy lets its pods reach the Kubernetes API server (an ipBlock)", p))
		}
		// The service's own egress, where a policy isolates it (components/default-deny).
		isolated := slices.ContainsFunc(m.networkPolicies, func(np *networkingv1.NetworkPolicy) bool {
			return selects(&np.Spec.PodSelector, service.pod.Labels) && slices.Contains(policyTypes(np), networkingv1.PolicyTypeEgress)
		})
		if isolated && !slices.ContainsFunc(m.egressRules(*service), func(r networkingv1.NetworkPolicyEgressRule) bool {
			return opensPort(r.Ports, p.w, pg) && slices.ContainsFunc(r.To, samePods(p.w))
		}) {
			problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy lets %s reach it on %d", p, service, pg))
		}
	}
	return problems
}

func containerPortNamed(w workload, name string) int32 {
	for i := range w.pod.Spec.Containers {
		if n := containerPort(&w.pod.Spec.Containers[i], intstr.FromString(name)); n != 0 {
			return n
		}
	}
	return 0
}

// samePods reports whether a peer admits w's pods in the policy's own namespace.
func samePods(w workload) func(networkingv1.NetworkPolicyPeer) bool {
	return func(peer networkingv1.NetworkPolicyPeer) bool {
		return peer.IPBlock == nil && peer.NamespaceSelector == nil && selects(peer.PodSelector, w.pod.Labels)
	}
}

// ingressRules are the ingress rules of every NetworkPolicy that isolates w's pods for ingress.
func (m *manifests) ingressRules(w workload) []networkingv1.NetworkPolicyIngressRule {
	var out []networkingv1.NetworkPolicyIngressRule
	for _, np := range m.networkPolicies {
		if selects(&np.Spec.PodSelector, w.pod.Labels) && slices.Contains(policyTypes(np), networkingv1.PolicyTypeIngress) {
			out = append(out, np.Spec.Ingress...)
		}
	}
	return out
}

// egressRules are the egress rules of every NetworkPolicy that isolates w's pods for egress.
func (m *manifests) egressRules(w workload) []networkingv1.NetworkPolicyEgressRule {
	var out []networkingv1.NetworkPolicyEgressRule
	for _, np := range m.networkPolicies {
		if selects(&np.Spec.PodSelector, w.pod.Labels) && slices.Contains(policyTypes(np), networkingv1.PolicyTypeEgress) {
			out = append(out, np.Spec.Egress...)
		}
	}
	return out
}
