package deploy

import (
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// check is one policy every variant must meet. It returns the problems it finds, each naming
// the object, so that TestChecksCatchBreakage can prove each check fails when it should.
type check struct {
	name string
	run  func(m *manifests, vars envExample) []string
}

var checks = []check{
	{"containers", checkContainers},
	{"shop probes", checkShopProbes},
	{"disruption budgets", checkDisruptionBudgets},
	{"replicas", checkReplicas},
	{"service settings", checkServiceSettings},
	{"no repeated defaults", checkNoRepeatedDefaults},
	{"secrets", checkSecrets},
	{"graceful shutdown", checkGracefulShutdown},
	{"services", checkServices},
	{"customers-grpc", checkCustomersGRPC},
	{"network policy", checkNetworkPolicy},
	{"trusted proxies", checkTrustedProxies},
	{"mutual TLS", checkMutualTLS},
	{"pgbouncer", checkPgBouncer},
	{"metrics", checkMetrics},
	{"monitoring", checkMonitoring},
	{"patroni", checkPatroni},
	{"patroni network policy", checkPatroniNetworkPolicy},
}

func TestPolicies(t *testing.T) {
	vars := readEnvExample(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m := build(t, v)
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					for _, p := range c.run(m, vars) {
						t.Error(p)
					}
				})
			}
		})
	}
}

// TestEveryKustomizationIsBuilt: a new overlay or component is checked as soon as it exists.
func TestEveryKustomizationIsBuilt(t *testing.T) {
	built := map[string]bool{}
	for _, v := range variants {
		built[v.dir] = true
		for _, c := range v.components {
			built[c] = true
		}
		for _, tr := range v.transformers {
			built[tr] = true
		}
		// And the components the kustomization itself names.
		var k struct{ Components []string }
		readYAML(t, filepath.Join(v.dir, "kustomization.yaml"), &k)
		for _, c := range k.Components {
			built[path.Clean(path.Join(v.dir, c))] = true
		}
	}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "kustomization.yaml" && !built[filepath.ToSlash(filepath.Dir(p))] {
			t.Errorf("%s is not in variants: no test builds it", filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEnvExampleHasTheServicesSettings(t *testing.T) {
	vars := readEnvExample(t)
	for _, name := range []string{"APP_ENV", "SHUTDOWN_TIMEOUT"} {
		if _, ok := vars[""][name]; !ok {
			t.Errorf(".env.example: no %s among the settings of both services", name)
		}
	}
	for _, name := range []string{"CUSTOMERS_DATABASE_URL", "CUSTOMERS_JWT_SECRET"} {
		if _, ok := vars["CUSTOMERS"][name]; !ok {
			t.Errorf(".env.example: no %s among customers' settings", name)
		}
	}
	for _, name := range []string{"CART_DATABASE_URL", "CART_PAGE_TOKEN_SECRET"} {
		if _, ok := vars["CART"][name]; !ok {
			t.Errorf(".env.example: no %s among cart's settings", name)
		}
	}
}

// checkContainers: every container of every pod, init containers included, has
// requests and limits for CPU and memory, a pinned image and the restricted security context;
// every serving container has liveness, readiness and startup probes.
func checkContainers(m *manifests, _ envExample) []string {
	var problems []string
	for _, w := range m.workloads() {
		if w.step {
			continue // checked with its workload
		}
		p := &w.pod.Spec
		// Only a pod whose account a RoleBinding grants something calls the API (Patroni).
		apiCaller := p.ServiceAccountName != "" && m.roleBinding(p.ServiceAccountName) != nil
		if !apiCaller && (p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken) {
			problems = append(problems, fmt.Sprintf("%s: automountServiceAccountToken is not false (its account is bound to no Role: it does not call the Kubernetes API)", w))
		}
		containers := append(slices.Clone(p.InitContainers), p.Containers...)
		for i := range containers {
			c := &containers[i]
			at := fmt.Sprintf("%s, container %s", w, c.Name)
			problems = append(problems, checkImage(at, c.Image)...)
			problems = append(problems, checkResources(at, c.Resources)...)
			problems = append(problems, checkSecurityContext(at, p.SecurityContext, c.SecurityContext)...)
			if w.serving && i >= len(p.InitContainers) {
				for probe, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
					if pr == nil || (pr.HTTPGet == nil && pr.TCPSocket == nil && pr.Exec == nil && pr.GRPC == nil) {
						problems = append(problems, fmt.Sprintf("%s: no %s probe", at, probe))
					}
				}
			}
		}
	}
	return problems
}

// checkImage wants a pinned image: a digest, or a tag other than latest.
func checkImage(at, image string) []string {
	_, tag, digest := splitImage(image)
	switch {
	case digest != "":
		return nil
	case tag == "":
		return []string{fmt.Sprintf("%s: image %s has no tag", at, image)}
	case tag == "latest":
		return []string{fmt.Sprintf("%s: image %s: pin a version, not latest", at, image)}
	}
	return nil
}

// checkResources wants requests and limits for CPU and memory, each request within its limit.
func checkResources(at string, r corev1.ResourceRequirements) []string {
	var problems []string
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		switch {
		case !okReq || req.IsZero():
			problems = append(problems, fmt.Sprintf("%s: no %s request", at, name))
		case !okLim || lim.IsZero():
			problems = append(problems, fmt.Sprintf("%s: no %s limit", at, name))
		case req.Cmp(lim) > 0:
			problems = append(problems, fmt.Sprintf("%s: %s request %s above its limit %s", at, name, req.String(), lim.String()))
		}
	}
	return problems
}

// checkSecurityContext wants the restricted Pod Security Standard on the container itself, and
// a numeric non-root user (an image that names its user cannot be checked by runAsNonRoot).
func checkSecurityContext(at string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) []string {
	if c == nil {
		return []string{at + ": no securityContext"}
	}
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, at+": "+fmt.Sprintf(format, args...)) }
	if c.RunAsNonRoot == nil || !*c.RunAsNonRoot {
		fail("runAsNonRoot is not true")
	}
	user := c.RunAsUser
	if user == nil && pod != nil {
		user = pod.RunAsUser
	}
	if user == nil || *user == 0 {
		fail("no non-root runAsUser: the kubelet cannot verify runAsNonRoot for a named user")
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		fail("readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		fail("allowPrivilegeEscalation is not false")
	}
	if c.Privileged != nil && *c.Privileged {
		fail("privileged")
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		fail("capabilities: drop ALL and add none")
	}
	if c.SeccompProfile == nil || c.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("seccompProfile is not RuntimeDefault")
	}
	return problems
}

// shopContainers returns the containers of w that run a shop service, with its prefix.
func shopContainers(w workload) map[string]*corev1.Container {
	out := map[string]*corev1.Container{}
	for i := range w.pod.Spec.Containers {
		c := &w.pod.Spec.Containers[i]
		if p := shopPrefix(c.Image); p != "" {
			out[p] = c
		}
	}
	return out
}

// checkShopProbes: the services' probes are HTTP on their REST port: /healthz for liveness and
// start-up, /readyz for readiness.
func checkShopProbes(m *manifests, _ envExample) []string {
	var problems []string
	for _, w := range m.workloads() {
		if !w.serving {
			continue
		}
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			port, err := addrPort(env[prefix+"_HTTP_ADDR"].value)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s_HTTP_ADDR: %v", w, prefix, err))
				continue
			}
			for _, p := range []struct {
				kind, path string
				probe      *corev1.Probe
			}{{"liveness", "/healthz", c.LivenessProbe}, {"startup", "/healthz", c.StartupProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
				switch {
				case p.probe == nil || p.probe.HTTPGet == nil:
					problems = append(problems, fmt.Sprintf("%s: %s probe is not an HTTP GET", w, p.kind))
				case p.probe.HTTPGet.Path != p.path:
					problems = append(problems, fmt.Sprintf("%s: %s probe gets %s, want %s", w, p.kind, p.probe.HTTPGet.Path, p.path))
				case containerPort(c, p.probe.HTTPGet.Port) != port:
					problems = append(problems, fmt.Sprintf("%s: %s probe is not on the REST port %d", w, p.kind, port))
				}
			}
		}
	}
	return problems
}

// containerPort resolves a port by number or by the name of one of c's ports (0: none).
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// checkDisruptionBudgets: a PodDisruptionBudget selects every Deployment's pods, and leaves
// room to evict one of them.
func checkDisruptionBudgets(m *manifests, _ envExample) []string {
	var problems []string
	for _, d := range m.deployments {
		found := false
		for _, pdb := range m.pdbs {
			if !selects(pdb.Spec.Selector, d.Spec.Template.Labels) {
				continue
			}
			found = true
			if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
				problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s sets neither maxUnavailable nor minAvailable", pdb.Name))
			}
			if mu := pdb.Spec.MaxUnavailable; mu != nil && mu.Type == intstr.Int && mu.IntVal < 1 {
				problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s: maxUnavailable %d blocks every node drain", pdb.Name, mu.IntVal))
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("Deployment %s: no PodDisruptionBudget selects its pods", d.Name))
		}
	}
	return append(problems, m.checkPatroniDisruptionBudgets()...)
}

// checkReplicas: every Deployment runs at least 2 replicas, set on it or, when an HPA scales
// it, as the HPA's minimum (and then not on the Deployment, where every apply would reset the
// HPA's count). Production scales each service with an HPA.
func checkReplicas(m *manifests, _ envExample) []string {
	var problems []string
	for _, d := range m.deployments {
		var hpaMin *int32
		scaled := false
		for _, h := range m.hpas {
			if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
				scaled, hpaMin = true, h.Spec.MinReplicas
			}
		}
		switch {
		case scaled && d.Spec.Replicas != nil:
			problems = append(problems, fmt.Sprintf("Deployment %s: an HPA scales it, so it must not set replicas", d.Name))
		case scaled && (hpaMin == nil || *hpaMin < 2):
			problems = append(problems, fmt.Sprintf("HPA of Deployment %s: minReplicas below 2", d.Name))
		case !scaled && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2):
			problems = append(problems, fmt.Sprintf("Deployment %s: fewer than 2 replicas", d.Name))
		}
		if m.variant.production && !scaled && len(shopContainers(workload{pod: &d.Spec.Template})) > 0 {
			problems = append(problems, fmt.Sprintf("Deployment %s: no HorizontalPodAutoscaler in production", d.Name))
		}
	}
	for _, h := range m.hpas {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || m.deployment(h.Spec.ScaleTargetRef.Name) == nil {
			problems = append(problems, fmt.Sprintf("HPA %s scales %s %s, which the build does not have", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name))
		}
		if h.Spec.MaxReplicas < 2 || (h.Spec.MinReplicas != nil && h.Spec.MaxReplicas < *h.Spec.MinReplicas) {
			problems = append(problems, fmt.Sprintf("HPA %s: maxReplicas %d", h.Name, h.Spec.MaxReplicas))
		}
	}
	return problems
}

// optionalVar reports whether a variable that .env.example leaves empty may stay unset: it
// then switches something off instead of breaking the service. Every other variable with an
// empty default must be set: the database URL (empty means the SQLite file, which a read-only
// root filesystem and several replicas rule out) and the secrets (production refuses to start
// without them).
func optionalVar(name string) bool {
	switch {
	case name == "GOMEMLIMIT": // no soft memory limit
	case strings.HasSuffix(name, "_DEBUG_ADDR"): // no pprof server
	case name == "OTEL_EXPORTER_OTLP_ENDPOINT": // no span exported
	case strings.HasSuffix(name, "_CORS_ALLOWED_ORIGINS"): // no CORS headers
	case strings.HasSuffix(name, "_DEMO_DATA"): // follows APP_ENV
	case strings.HasSuffix(name, "_TRUSTED_PROXIES"): // no X-Forwarded-For believed
	case strings.HasSuffix(name, "_DATABASE_PASSWORD"): // the password in the URL, or none
	case strings.Contains(name, "_TLS_"): // plaintext: production requires ALLOW_PLAINTEXT, checked below
	case strings.HasSuffix(name, "_NATS_URL"): // no events: the outbox keeps them (and the service logs an error)
	default:
		return false
	}
	return true
}

// checkServiceSettings: every setting of .env.example a service needs is set or has a
// default, every variable the manifests set is one .env.example lists (a misspelt name would
// be silently ignored), the servers serve without migrating and their init containers migrate, and in
// production mode the settings production refuses are absent.
func checkServiceSettings(m *manifests, vars envExample) []string {
	var problems []string
	for _, w := range m.workloads() {
		for prefix, c := range shopContainers(w) {
			at := fmt.Sprintf("%s, container %s", w, c.Name)
			env, unresolved := m.env(c)
			for _, p := range unresolved {
				problems = append(problems, at+": "+p)
			}
			for _, section := range []string{"", prefix} {
				for name, def := range vars[section] {
					if def == "" && !optionalVar(name) && !env[name].set() {
						problems = append(problems, fmt.Sprintf("%s: %s is not set, and .env.example has no default for it", at, name))
					}
				}
			}
			for name := range env {
				if !vars.known(name) {
					problems = append(problems, fmt.Sprintf("%s: sets %s, which .env.example does not list", at, name))
				}
			}
			problems = append(problems, checkSubcommand(w, c, prefix, env)...)
			problems = append(problems, checkProductionMode(m, w, at, prefix, env)...)
		}
	}
	return problems
}

// checkNoRepeatedDefaults: the manifests set a setting only to change it. A value equal to
// the default would stay behind, silently, when the default changes in its declaration; the
// one exception is an overlay or component setting back what the base changed.
func checkNoRepeatedDefaults(m *manifests, vars envExample) []string {
	base := baseSettings()
	var problems []string
	for _, w := range m.workloads() {
		for _, c := range shopContainers(w) {
			for name, v := range m.set(c) {
				if v.secret != nil || v.other || !vars.known(name) {
					continue
				}
				if b, ok := base[name]; ok && b != v.value {
					continue
				}
				if v.value == vars.binaryDefault(name) {
					problems = append(problems, fmt.Sprintf("%s, container %s: sets %s=%s, its default: leave it out", w, c.Name, name, v.value))
				}
			}
		}
	}
	return problems
}

// baseSettings are the settings deploy/base's env files set.
func baseSettings() map[string]string {
	out := map[string]string{}
	for _, f := range []string{"base/shop.env", "base/customers.env", "base/cart.env"} {
		b, err := os.ReadFile(f)
		if err != nil {
			panic(err) // the base is part of the tree
		}
		for line := range strings.Lines(string(b)) {
			if name, value, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(name, "#") {
				out[name] = value
			}
		}
	}
	return out
}

func checkSubcommand(w workload, c *corev1.Container, prefix string, env map[string]envValue) []string {
	var problems []string
	if w.serving {
		if len(c.Command) > 0 || (len(c.Args) > 0 && !slices.Equal(c.Args, []string{"serve"})) {
			problems = append(problems, fmt.Sprintf("%s: runs %q %q, want the image's entrypoint with serve", w, c.Command, c.Args))
		}
		if env[prefix+"_MIGRATE_ON_START"].value != "false" {
			problems = append(problems, fmt.Sprintf("%s: %s_MIGRATE_ON_START is not false: the init container migrate migrates", w, prefix))
		}
	} else if len(c.Command) > 0 || !slices.Equal(c.Args, []string{"migrate"}) {
		problems = append(problems, fmt.Sprintf("%s: runs %q %q, want the image's entrypoint with migrate", w, c.Command, c.Args))
	}
	return problems
}

// checkProductionMode mirrors what APP_ENV=production refuses (README, "Production
// checklist"), so that a pod does not crash-loop on it; production variants also may not fall
// back on plaintext gRPC at all.
func checkProductionMode(m *manifests, w workload, at, prefix string, env map[string]envValue) []string {
	var problems []string
	if m.variant.production && env["APP_ENV"].value != "production" {
		problems = append(problems, at+": APP_ENV is not production")
	}
	if env["APP_ENV"].value != "production" {
		return nil
	}
	if env[prefix+"_DEMO_DATA"].value == "true" {
		problems = append(problems, fmt.Sprintf("%s: %s_DEMO_DATA=true, which production refuses", at, prefix))
	}
	// The base leaves the NATS server to its overlays; migrate runs without one.
	if m.variant.production && w.serving && !env[prefix+"_NATS_URL"].set() {
		problems = append(problems, fmt.Sprintf("%s: no %s_NATS_URL: production refuses to serve without it", at, prefix))
	}
	links := [][2]string{{"_GRPC_TLS_CERT", "_ALLOW_PLAINTEXT_GRPC"}}
	if prefix == "CART" {
		links = append(links, [2]string{"_CUSTOMERS_TLS_CA", "_ALLOW_PLAINTEXT_CUSTOMERS"})
	}
	for _, l := range links {
		tls, plaintext := env[prefix+l[0]].set(), env[prefix+l[1]].value == "true"
		switch {
		case !tls && !plaintext:
			problems = append(problems, fmt.Sprintf("%s: neither %s%s nor %s%s=true: production refuses to start", at, prefix, l[0], prefix, l[1]))
		case plaintext && m.variant.production:
			problems = append(problems, fmt.Sprintf("%s: %s%s=true in production", at, prefix, l[1]))
		}
	}
	return problems
}

// secretName reports whether a variable's value must come from a Secret.
func secretName(name string) bool {
	n := strings.ToUpper(name)
	return strings.Contains(n, "SECRET") || strings.Contains(n, "PASSWORD") || strings.Contains(n, "DATABASE_URL")
}

// checkSecrets: secrets reach containers only through secretKeyRef, never as a value in the
// pod spec or a ConfigMap; every Secret in the tree is labelled dev-only, and production has
// none; a build that ships Secrets ships every key its containers reference.
func checkSecrets(m *manifests, _ envExample) []string {
	var problems []string
	for _, w := range m.workloads() {
		for _, c := range append(slices.Clone(w.pod.Spec.InitContainers), w.pod.Spec.Containers...) {
			for _, e := range c.Env {
				if !secretName(e.Name) {
					continue
				}
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					problems = append(problems, fmt.Sprintf("%s, container %s: %s is not from a secretKeyRef", w, c.Name, e.Name))
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				if _, inBuild, found := m.secretValue(ref.Name, ref.Key); len(m.secrets) > 0 && !found {
					if inBuild {
						problems = append(problems, fmt.Sprintf("%s: %s: Secret %s has no key %s", w, e.Name, ref.Name, ref.Key))
					} else {
						problems = append(problems, fmt.Sprintf("%s: %s: Secret %s is not in the build, which has its other Secrets", w, e.Name, ref.Name))
					}
				}
			}
		}
	}
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			if secretName(k) {
				problems = append(problems, fmt.Sprintf("ConfigMap %s: %s belongs in a Secret", cm.Name, k))
			}
		}
	}
	for _, s := range m.secrets {
		switch {
		case m.variant.production && (len(s.Data) > 0 || len(s.StringData) > 0):
			problems = append(problems, fmt.Sprintf("Secret %s: production defines no secret values in the tree", s.Name))
		case s.Labels["shop-dev-only"] != "true":
			problems = append(problems, fmt.Sprintf("Secret %s is not labelled shop-dev-only", s.Name))
		}
	}
	return problems
}

// checkGracefulShutdown: the kubelet waits longer than the drain delay and the shutdown
// timeout the services run with (set, or their defaults) before it kills the pod.
func checkGracefulShutdown(m *manifests, _ envExample) []string {
	var problems []string
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template}
		for _, c := range shopContainers(w) {
			env, _ := m.env(c)
			var total time.Duration
			for _, name := range []string{"SHUTDOWN_DRAIN_DELAY", "SHUTDOWN_TIMEOUT"} {
				v, err := time.ParseDuration(env[name].value)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %s is not set to a duration: %v", w, name, err))
				}
				total += v
			}
			grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
			if grace == nil || time.Duration(*grace)*time.Second <= total {
				problems = append(problems, fmt.Sprintf("%s: terminationGracePeriodSeconds is not above SHUTDOWN_DRAIN_DELAY + SHUTDOWN_TIMEOUT (%s)", w, total))
			}
		}
	}
	return problems
}

// checkServices: every Service selects serving pods and targets ports they have; each port a
// service listens on (REST and gRPC) is behind a Service.
func checkServices(m *manifests, _ envExample) []string {
	var problems []string
	for _, s := range m.services {
		selected := false
		for _, w := range m.workloads() {
			if !w.serving || len(s.Spec.Selector) == 0 || !selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, m.leaderLabels(w)) {
				continue
			}
			selected = true
			for _, p := range s.Spec.Ports {
				if servingPort(w, p) == 0 {
					problems = append(problems, fmt.Sprintf("Service %s: port %s targets %s, which %s does not have", s.Name, p.Name, p.TargetPort.String(), w))
				}
			}
		}
		if !selected {
			problems = append(problems, fmt.Sprintf("Service %s selects no serving pods", s.Name))
		}
	}
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			for _, addr := range []string{"_HTTP_ADDR", "_GRPC_ADDR"} {
				port, err := addrPort(env[prefix+addr].value)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %s%s: %v", w, prefix, addr, err))
					continue
				}
				if len(m.servicesFor(w, port)) == 0 {
					problems = append(problems, fmt.Sprintf("%s: no Service for port %d (%s%s)", w, port, prefix, addr))
				}
			}
		}
	}
	return problems
}

// servingPort returns the container port of w that a Service port targets, or 0.
func servingPort(w workload, p corev1.ServicePort) int32 {
	target := p.TargetPort
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(p.Port)
	}
	for i := range w.pod.Spec.Containers {
		c := &w.pod.Spec.Containers[i]
		if n := containerPort(c, target); n != 0 && slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == n }) {
			return n
		}
	}
	return 0
}

// servicesFor returns the Services that route to containerPort of w's pods.
func (m *manifests) servicesFor(w workload, port int32) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range m.services {
		if len(s.Spec.Selector) == 0 || !selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.pod.Labels) {
			continue
		}
		for _, p := range s.Spec.Ports {
			if servingPort(w, p) == port {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// checkCustomersGRPC: cart reaches customers as dns:///customers-grpc:50051 through a headless
// Service, so that DNS gives it every ready customers pod to balance over.
func checkCustomersGRPC(m *manifests, _ envExample) []string {
	var problems []string
	s := m.service("customers-grpc")
	switch {
	case s == nil || len(s.Spec.Ports) != 1:
		return []string{"no Service customers-grpc with one port"}
	case s.Spec.ClusterIP != corev1.ClusterIPNone:
		problems = append(problems, "Service customers-grpc is not headless (clusterIP: None)")
	}
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			switch prefix {
			case "CUSTOMERS":
				port, _ := addrPort(env["CUSTOMERS_GRPC_ADDR"].value)
				if !slices.Contains(m.servicesFor(w, port), s) {
					problems = append(problems, fmt.Sprintf("Service customers-grpc does not route to %s's gRPC port %d", w, port))
				}
			case "CART":
				addr := env["CART_CUSTOMERS_ADDR"].value
				if want := fmt.Sprintf("dns:///%s:%d", s.Name, s.Spec.Ports[0].Port); addr != want {
					problems = append(problems, fmt.Sprintf("%s: CART_CUSTOMERS_ADDR is %q, want %q", w, addr, want))
				}
			}
		}
	}
	return problems
}

// checkNetworkPolicy: in production, customers' gRPC port admits cart's pods and no one else.
// Policies add up: every rule of every policy on customers' pods that opens the gRPC port must
// admit cart's pods only.
func checkNetworkPolicy(m *manifests, _ envExample) []string {
	if !m.variant.production {
		return nil
	}
	customers, cart := m.servingPods("CUSTOMERS"), m.servingPods("CART")
	if customers == nil || cart == nil {
		return []string{"no customers or no cart Deployment"}
	}
	env, _ := m.env(shopContainers(*customers)["CUSTOMERS"])
	grpcPort, err := addrPort(env["CUSTOMERS_GRPC_ADDR"].value)
	if err != nil {
		return []string{"CUSTOMERS_GRPC_ADDR: " + err.Error()}
	}
	var problems []string
	isolated, admitsCart := false, false
	for _, np := range m.networkPolicies {
		if !selects(&np.Spec.PodSelector, customers.pod.Labels) || !slices.Contains(policyTypes(np), networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for i, rule := range np.Spec.Ingress {
			if !opensPort(rule.Ports, *customers, grpcPort) {
				continue
			}
			if len(rule.From) == 0 {
				problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens customers' gRPC port to everyone", np.Name, i))
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil:
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens customers' gRPC port beyond cart's pods", np.Name, i))
				case len(peer.PodSelector.MatchLabels) == 0 && len(peer.PodSelector.MatchExpressions) == 0:
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens customers' gRPC port to every pod", np.Name, i))
				case !selects(peer.PodSelector, cart.pod.Labels) || selects(peer.PodSelector, customers.pod.Labels):
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens customers' gRPC port to pods other than cart's", np.Name, i))
				default:
					admitsCart = true
				}
			}
		}
	}
	if !isolated {
		problems = append(problems, "no NetworkPolicy restricts ingress to customers' pods")
	} else if !admitsCart {
		problems = append(problems, "no NetworkPolicy admits cart's pods to customers' gRPC port")
	}
	return problems
}

// servingPods returns the Deployment that runs the shop service with prefix.
func (m *manifests) servingPods(prefix string) *workload {
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
		if shopContainers(w)[prefix] != nil {
			return &w
		}
	}
	return nil
}

func policyTypes(np *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(np.Spec.PolicyTypes) > 0 {
		return np.Spec.PolicyTypes
	}
	return []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
}

// opensPort reports whether rule ports (none: all) include port of w's containers.
func opensPort(ports []networkingv1.NetworkPolicyPort, w workload, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Port == nil {
			return true
		}
		for i := range w.pod.Spec.Containers {
			n := containerPort(&w.pod.Spec.Containers[i], *p.Port)
			if n == port || (p.EndPort != nil && n <= port && port <= *p.EndPort) {
				return true
			}
		}
	}
	return false
}

// checkMutualTLS: every TLS file a service is configured with is a key of a cert-manager
// certificate mounted at that path; customers' certificate names the Service cart dials, cart's
// may act as a client, both come from one CA; production requires mutual TLS. (The migrate
// step sees the same settings but opens no TLS file.)
func checkMutualTLS(m *manifests, _ envExample) []string {
	var problems []string
	certs := map[string]*certificate{} // by variable
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
		for _, c := range shopContainers(w) {
			env, _ := m.env(c)
			for name, v := range env {
				if !tlsFileVar(name) || v.value == "" {
					continue
				}
				cert, err := m.mountedCertificate(w, c, v.value)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: %s: %v", w, name, err))
					continue
				}
				certs[name] = cert
			}
		}
	}
	customers, cartClient := certs["CUSTOMERS_GRPC_TLS_CERT"], certs["CART_CUSTOMERS_TLS_CERT"]
	mutual := certs["CUSTOMERS_GRPC_TLS_CLIENT_CA"] != nil
	if m.variant.production && (!mutual || cartClient == nil || certs["CART_CUSTOMERS_TLS_CA"] == nil) {
		problems = append(problems, "production: customers does not require a client certificate from cart, or cart presents none")
	}
	if mutual && cartClient == nil {
		problems = append(problems, "customers requires client certificates, but cart presents none")
	}
	if c := m.servingPods("CUSTOMERS"); c != nil && mutual && cartClient != nil {
		env, _ := m.env(shopContainers(*c)["CUSTOMERS"])
		names := strings.Split(env["CUSTOMERS_GRPC_TLS_CLIENT_NAMES"].value, ",")
		if !slices.ContainsFunc(cartClient.Spec.DNSNames, func(n string) bool { return slices.Contains(names, n) }) {
			problems = append(problems, fmt.Sprintf("CUSTOMERS_GRPC_TLS_CLIENT_NAMES %q does not name cart's certificate %s %q: customers refuses cart, or production refuses to start",
				env["CUSTOMERS_GRPC_TLS_CLIENT_NAMES"].value, cartClient.Name, cartClient.Spec.DNSNames))
		}
	}
	if customers != nil && cartClient != nil {
		if !slices.Contains(customers.Spec.Usages, "server auth") {
			problems = append(problems, fmt.Sprintf("Certificate %s: no server auth usage", customers.Name))
		}
		if !slices.Contains(cartClient.Spec.Usages, "client auth") {
			problems = append(problems, fmt.Sprintf("Certificate %s: no client auth usage, so customers refuses it", cartClient.Name))
		}
		if customers.Spec.IssuerRef != cartClient.Spec.IssuerRef {
			problems = append(problems, "customers' and cart's certificates come from different issuers: neither trusts the other's ca.crt")
		}
		if cart := m.servingPods("CART"); cart != nil {
			env, _ := m.env(shopContainers(*cart)["CART"])
			name := env["CART_CUSTOMERS_TLS_SERVER_NAME"].value
			if name == "" {
				name = customersHost(env["CART_CUSTOMERS_ADDR"].value)
			}
			if !slices.Contains(customers.Spec.DNSNames, name) {
				problems = append(problems, fmt.Sprintf("Certificate %s does not name %s, the name cart checks", customers.Name, name))
			}
		}
	}
	for _, c := range m.certificates {
		named := map[string][]string{} // by Service
		for _, n := range c.Spec.DNSNames {
			svc, _, _ := strings.Cut(n, ".")
			switch {
			case m.service(svc) == nil:
				problems = append(problems, fmt.Sprintf("Certificate %s names %s, which is no Service", c.Name, n))
			case !slices.Contains(inClusterNames(svc, c.Namespace), n):
				problems = append(problems, fmt.Sprintf("Certificate %s in namespace %s names %s, which is not Service %s in that namespace", c.Name, c.Namespace, n, svc))
			default:
				named[svc] = append(named[svc], n)
			}
		}
		for svc, names := range named {
			for _, want := range inClusterNames(svc, c.Namespace) {
				if !slices.Contains(names, want) {
					problems = append(problems, fmt.Sprintf("Certificate %s does not name %s: a client dialling Service %s so refuses it", c.Name, want, svc))
				}
			}
		}
		if !slices.ContainsFunc(m.issuers, func(i *issuer) bool { return i.Name == c.Spec.IssuerRef.Name && c.Spec.IssuerRef.Kind == "Issuer" }) {
			problems = append(problems, fmt.Sprintf("Certificate %s: issuer %s %s is not in the build", c.Name, c.Spec.IssuerRef.Kind, c.Spec.IssuerRef.Name))
		}
	}
	return problems
}

// inClusterNames are the names a client in the cluster may dial Service svc of namespace ns by.
func inClusterNames(svc, ns string) []string {
	return []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"}
}

// tlsFileVar reports whether a setting names a PEM file (a certificate, a key or a CA).
func tlsFileVar(name string) bool {
	return strings.Contains(name, "_TLS_") && (strings.HasSuffix(name, "_CERT") || strings.HasSuffix(name, "_KEY") || strings.HasSuffix(name, "_CA"))
}

// customersHost returns the host of a gRPC target such as dns:///customers-grpc:50051.
func customersHost(target string) string {
	if _, rest, ok := strings.Cut(target, ":///"); ok {
		target = rest
	}
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return target
	}
	return host
}

// mountedCertificate returns the Certificate whose Secret is mounted in c such that file is one
// of the keys cert-manager writes.
func (m *manifests) mountedCertificate(w workload, c *corev1.Container, file string) (*certificate, error) {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range w.pod.Spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			cert := m.certificateFor(v.Secret.SecretName)
			if cert == nil {
				return nil, fmt.Errorf("%s is in Secret %s, which no Certificate of the build writes", file, v.Secret.SecretName)
			}
			if !slices.Contains([]string{"tls.crt", "tls.key", "ca.crt"}, path.Clean(rel)) {
				return nil, fmt.Errorf("%s: cert-manager writes tls.crt, tls.key and ca.crt", file)
			}
			return cert, nil
		}
	}
	return nil, fmt.Errorf("%s is in no mounted certificate Secret", file)
}

// checkPgBouncer: PgBouncer pools transactions, the services reach it with a DSN in a query
// mode that works behind a transaction pooler, and the migrate step never goes through it (a
// long schema change must not hold a pooled server connection the services need).
func checkPgBouncer(m *manifests, _ envExample) []string {
	var problems []string
	poolers := map[string]bool{} // Service names
	for _, w := range m.workloads() {
		for _, c := range w.pod.Spec.Containers {
			if repo, _, _ := splitImage(c.Image); !strings.HasSuffix(repo, "pgbouncer") {
				continue
			}
			if mode := m.pgbouncerSetting(w, "pool_mode"); mode != "transaction" {
				problems = append(problems, fmt.Sprintf("%s: pool_mode is %q, want transaction", w, mode))
			}
			if ca := m.pgbouncerSetting(w, "server_tls_ca_file"); m.mountedKey(w, &c, ca) != pgbouncerCA {
				problems = append(problems, fmt.Sprintf("%s: server_tls_ca_file %s is %q, not %s, the CA bundle docs/deploy.md has operators create", w, ca, m.mountedKey(w, &c, ca), pgbouncerCA))
			}
			for _, s := range m.services {
				if len(s.Spec.Selector) > 0 && selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, w.pod.Labels) {
					poolers[s.Name] = true
				}
			}
		}
	}
	if len(poolers) == 0 {
		return problems
	}
	keys := map[bool]map[string]bool{true: {}, false: {}} // secret keys by serving
	for _, w := range m.workloads() {
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			ref := env[prefix+"_DATABASE_URL"].secret
			if ref == nil {
				continue
			}
			keys[w.serving][ref.Key] = true
			dsn, _, found := m.secretValue(ref.Name, ref.Key)
			if !found {
				continue
			}
			u, err := url.Parse(dsn)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s_DATABASE_URL: %v", w, prefix, err))
				continue
			}
			mode := u.Query().Get("default_query_exec_mode")
			switch {
			case !poolers[u.Hostname()]:
			case !w.serving:
				problems = append(problems, fmt.Sprintf("%s: migrates through PgBouncer %s, where a long schema change would hold a pooled connection", w, u.Hostname()))
			case mode != "exec" && mode != "simple_protocol":
				problems = append(problems, fmt.Sprintf("%s: DSN through PgBouncer without default_query_exec_mode=exec or simple_protocol", w))
			}
		}
	}
	for k := range keys[true] {
		if keys[false][k] {
			problems = append(problems, fmt.Sprintf("the services and their migrate step read the same DSN (%s): one of them goes the wrong way round PgBouncer", k))
		}
	}
	return problems
}

// pgbouncerCA is where PgBouncer's CA bundle for PostgreSQL's certificate comes from: the key
// ca.crt of the ConfigMap database-ca.
const pgbouncerCA = "ConfigMap database-ca, key ca.crt"

// mountedKey names the ConfigMap or Secret key that c sees as file, through a volume of w. A
// source without items gives each of its keys: that of a ConfigMap of the build only when it
// has the key; that of a Secret made outside the tree, whose keys are unknown, never.
func (m *manifests) mountedKey(w workload, c *corev1.Container, file string) string {
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range w.pod.Spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			var sources []corev1.VolumeProjection
			switch {
			case v.Projected != nil:
				sources = v.Projected.Sources
			case v.ConfigMap != nil:
				sources = []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items}}}
			case v.Secret != nil:
				sources = []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}}}
			}
			for _, src := range sources {
				kind, name, items := "", "", []corev1.KeyToPath(nil)
				switch {
				case src.ConfigMap != nil:
					kind, name, items = "ConfigMap", src.ConfigMap.Name, src.ConfigMap.Items
				case src.Secret != nil:
					kind, name, items = "Secret", src.Secret.Name, src.Secret.Items
				default:
					continue
				}
				for _, it := range items {
					if path.Clean(it.Path) == path.Clean(rel) {
						return fmt.Sprintf("%s %s, key %s", kind, name, it.Key)
					}
				}
				if len(items) > 0 || kind != "ConfigMap" || m.configMap(name) == nil {
					continue
				}
				if _, ok := m.configMap(name).Data[rel]; ok {
					return fmt.Sprintf("%s %s, key %s", kind, name, rel)
				}
			}
		}
	}
	return "no mounted file"
}

// pgbouncerSetting returns a [pgbouncer] setting of the pgbouncer.ini that w mounts.
func (m *manifests) pgbouncerSetting(w workload, key string) string {
	for _, v := range w.pod.Spec.Volumes {
		var names []string
		if v.ConfigMap != nil {
			names = append(names, v.ConfigMap.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					names = append(names, s.ConfigMap.Name)
				}
			}
		}
		for _, n := range names {
			cm := m.configMap(n)
			if cm == nil {
				continue
			}
			if ini, ok := cm.Data["pgbouncer.ini"]; ok {
				return iniSetting(ini, "pgbouncer", key)
			}
		}
	}
	return ""
}

func iniSetting(ini, section, key string) string {
	current := ""
	for _, line := range strings.Split(ini, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			current = strings.Trim(line, "[]")
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && current == section && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
