package deploy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// variant is one thing an operator can deploy: a kustomization of this tree, with components
// added on top of it (the test writes that kustomization into a temporary folder).
type variant struct {
	name       string
	dir        string
	components []string
	// namespace, when set, is that of the kustomization over dir (as one of an operator's own
	// sets it), with transformers listed in it; otherwise shop, the overlays' own.
	namespace    string
	transformers []string
	// production marks what runs in production: no Secret with data in the tree, mutual TLS
	// between the services, customers' gRPC port closed to all but cart.
	production bool
}

// variants are every kustomization and every component of the tree, each built at least once
// (TestEveryKustomizationIsBuilt keeps it so).
var variants = []variant{
	{name: "base", dir: "base"},
	{name: "dev", dir: "overlays/dev"},
	{name: "production", dir: "overlays/production", production: true},
	{name: "dev+pgbouncer", dir: "overlays/dev", components: []string{"components/pgbouncer"}},
	{name: "dev+mtls", dir: "overlays/dev", components: []string{"components/mtls"}},
	{name: "production+pgbouncer", dir: "overlays/production", components: []string{"components/pgbouncer"}, production: true},
	{name: "dev+observability", dir: "overlays/dev", components: []string{"components/observability"}},
	{name: "production+observability", dir: "overlays/production", components: []string{"components/observability"}, production: true},
	// An operator's kustomization over production that chooses another namespace, with the
	// transformer that names the Certificates' Services in it (components/mtls).
	{name: "production in shop-staging", dir: "overlays/production", namespace: "shop-staging", transformers: []string{"components/mtls/in-cluster-names"}, production: true},
	{name: "dev-patroni", dir: "overlays/dev-patroni"},
	{name: "dev-patroni+pgbouncer", dir: "overlays/dev-patroni", components: []string{"components/pgbouncer"}},
	{name: "production+patroni", dir: "overlays/production", components: []string{"components/patroni"}, production: true},
	{name: "production+patroni+pgbouncer", dir: "overlays/production", components: []string{"components/patroni", "components/pgbouncer"}, production: true},
}

// manifests are the objects one variant builds to, each decoded into its type.
type manifests struct {
	variant variant
	// defaults are .env.example's settings: what a container gets for a variable it does not set.
	defaults        envExample
	deployments     []*appsv1.Deployment
	statefulSets    []*appsv1.StatefulSet
	namespaces      []*corev1.Namespace
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	networkPolicies []*networkingv1.NetworkPolicy
	roles           []*rbacv1.Role
	roleBindings    []*rbacv1.RoleBinding
	certificates    []*certificate
	issuers         []*issuer
	podMonitors     []*monitoringv1.PodMonitor
	prometheusRules []*monitoringv1.PrometheusRule
	httpRoutes      []*httpRoute
}

// build runs kustomize on v, as `kubectl kustomize` does, and decodes every object into its
// type for the policy checks. Whether the objects are valid (a misspelt field, a wrong type, a
// CRD's schema) is the API server's to say: make test-k8s applies them with strict field
// validation.
func build(t testing.TB, v variant) *manifests {
	t.Helper()
	dir := v.dir
	if len(v.components) > 0 || v.namespace != "" {
		dir = t.TempDir()
		// kustomize takes relative paths only.
		rel := func(p string) string {
			abs, err := filepath.Abs(p)
			if err != nil {
				t.Fatal(err)
			}
			r, err := filepath.Rel(dir, abs)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		// The overlays' namespace: the components' generated objects must be in it for their
		// references to resolve.
		ns := v.namespace
		if ns == "" {
			ns = "shop"
		}
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + ns + "\nresources:\n  - " + rel(v.dir) + "\ncomponents:\n"
		for _, c := range v.components {
			k += "  - " + rel(c) + "\n"
		}
		k += "transformers:\n"
		for _, tr := range v.transformers {
			k += "  - " + rel(tr) + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", v.name, err)
	}
	m := &manifests{variant: v, defaults: readEnvExample(t)}
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.add(r.GetApiVersion(), r.GetKind(), y); err != nil {
			t.Errorf("%s: %s %s: %v", v.name, r.GetKind(), r.GetName(), err)
		}
	}
	return m
}

func (m *manifests) add(apiVersion, kind string, y []byte) error {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return decode(y, &m.deployments)
	case "apps/v1 StatefulSet":
		return decode(y, &m.statefulSets)
	case "v1 Namespace":
		return decode(y, &m.namespaces)
	case "v1 Service":
		return decode(y, &m.services)
	case "v1 ServiceAccount":
		return decode(y, &m.serviceAccounts)
	case "v1 ConfigMap":
		return decode(y, &m.configMaps)
	case "v1 Secret":
		return decode(y, &m.secrets)
	case "policy/v1 PodDisruptionBudget":
		return decode(y, &m.pdbs)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decode(y, &m.hpas)
	case "networking.k8s.io/v1 NetworkPolicy":
		return decode(y, &m.networkPolicies)
	case "rbac.authorization.k8s.io/v1 Role":
		return decode(y, &m.roles)
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return decode(y, &m.roleBindings)
	case "cert-manager.io/v1 Certificate":
		return decode(y, &m.certificates)
	case "cert-manager.io/v1 Issuer":
		return decode(y, &m.issuers)
	case "monitoring.coreos.com/v1 PodMonitor":
		return decode(y, &m.podMonitors)
	case "monitoring.coreos.com/v1 PrometheusRule":
		return decode(y, &m.prometheusRules)
	case "gateway.networking.k8s.io/v1 HTTPRoute":
		return decode(y, &m.httpRoutes)
	}
	return fmt.Errorf("no type to check %s %s against: add it to manifests", apiVersion, kind)
}

func decode[T any](y []byte, list *[]*T) error {
	v := new(T)
	if err := yaml.Unmarshal(y, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// certificate is cert-manager's cert-manager.io/v1 Certificate, with the fields the policy
// checks read. (The cert-manager module itself would bring in its controllers' dependencies.)
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string           `json:"secretName"`
		CommonName  string           `json:"commonName,omitempty"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		IsCA        bool             `json:"isCA,omitempty"`
		Usages      []string         `json:"usages,omitempty"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Group string `json:"group,omitempty"`
			Kind  string `json:"kind,omitempty"`
			Name  string `json:"name"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// httpRoute is the Gateway API's gateway.networking.k8s.io/v1 HTTPRoute, with the fields the
// checks read (make test-k8s applies it against the API's own CRD).
type httpRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ParentRefs []struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"parentRefs"`
		Hostnames []string `json:"hostnames,omitempty"`
		Rules     []struct {
			Matches []struct {
				Path *struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"path,omitempty"`
			} `json:"matches,omitempty"`
			BackendRefs []struct {
				Name string `json:"name"`
				Port int32  `json:"port"`
			} `json:"backendRefs,omitempty"`
		} `json:"rules"`
	} `json:"spec"`
}

// issuer is cert-manager's cert-manager.io/v1 Issuer, with the two kinds this tree uses.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// workload is an object that runs pods.
type workload struct {
	kind, name string
	pod        *corev1.PodTemplateSpec
	// serving: the pods run until stopped (a Deployment, a StatefulSet), not to completion.
	serving bool
	// step: the init containers of a serving workload's pods, seen as a workload of their own
	// that runs to completion (the migrate step), with pod holding them as its containers.
	step bool
}

func (w workload) String() string { return w.kind + " " + w.name }

func (m *manifests) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true})
		if len(d.Spec.Template.Spec.InitContainers) > 0 {
			init := d.Spec.Template.DeepCopy()
			init.Spec.Containers, init.Spec.InitContainers = init.Spec.InitContainers, nil
			out = append(out, workload{kind: "Deployment", name: d.Name + " (init containers)", pod: init, step: true})
		}
	}
	for _, s := range m.statefulSets {
		out = append(out, workload{kind: "StatefulSet", name: s.Name, pod: &s.Spec.Template, serving: true})
	}
	return out
}

func (m *manifests) deployment(name string) *appsv1.Deployment {
	for _, d := range m.deployments {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// migrate returns the init container migrate of the Deployment name.
func (m *manifests) migrate(name string) *corev1.Container {
	d := m.deployment(name)
	for i := range d.Spec.Template.Spec.InitContainers {
		if c := &d.Spec.Template.Spec.InitContainers[i]; c.Name == "migrate" {
			return c
		}
	}
	return nil
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (m *manifests) secret(name string) *corev1.Secret {
	for _, s := range m.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// secretValue returns the value of key in the Secret name, when the build has that Secret.
func (m *manifests) secretValue(name, key string) (value string, inBuild, found bool) {
	s := m.secret(name)
	if s == nil {
		return "", false, false
	}
	if v, ok := s.StringData[key]; ok {
		return v, true, true
	}
	v, ok := s.Data[key]
	return string(v), true, ok
}

func (m *manifests) certificateFor(secretName string) *certificate {
	for _, c := range m.certificates {
		if c.Spec.SecretName == secretName {
			return c
		}
	}
	return nil
}

// selects reports whether sel, a label selector, selects pods labelled podLabels.
func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(podLabels))
}

// shopPrefix returns the variable prefix of the shop service an image runs ("CUSTOMERS" for
// ghcr.io/acme/shop-customers, also under another registry), or "" for other images.
func shopPrefix(image string) string {
	repo, _, _ := splitImage(image)
	switch {
	case repo == "shop-customers" || strings.HasSuffix(repo, "/shop-customers"):
		return "CUSTOMERS"
	case repo == "shop-cart" || strings.HasSuffix(repo, "/shop-cart"):
		return "CART"
	}
	return ""
}

// splitImage splits an image reference into repository, tag and digest.
func splitImage(image string) (repo, tag, digest string) {
	image, digest, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image, tag = image[:i], image[i+1:]
	}
	return image, tag, digest
}

// envValue is a container's environment variable, as the container would see it.
type envValue struct {
	// value is the literal value, from the container's env or from a ConfigMap.
	value string
	// secret, when set, is where the value comes from.
	secret *corev1.SecretKeySelector
	// other: a field or resource reference.
	other bool
	// byDefault: the container does not set it; value is the service's default.
	byDefault bool
}

func (e envValue) set() bool { return e.value != "" || e.secret != nil || e.other }

// env resolves c's environment: envFrom ConfigMaps, then env, which takes precedence, and for
// the shop's containers the default of every setting they leave unset. It reports what cannot
// be resolved in the build.
func (m *manifests) env(c *corev1.Container) (map[string]envValue, []string) {
	out := m.set(c)
	if prefix := shopPrefix(c.Image); prefix != "" {
		for _, section := range []string{"", prefix} {
			for name, def := range m.defaults[section] {
				if _, ok := out[name]; !ok && def != "" {
					out[name] = envValue{value: m.defaults.binaryDefault(name), byDefault: true}
				}
			}
		}
	}
	return out, m.unresolved(c)
}

// unresolved reports what of c's environment cannot be resolved in the build.
func (m *manifests) unresolved(c *corev1.Container) []string {
	var problems []string
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil && m.configMap(from.ConfigMapRef.Name) == nil:
			problems = append(problems, fmt.Sprintf("envFrom names ConfigMap %s, which the build does not have", from.ConfigMapRef.Name))
		case from.SecretRef != nil:
			problems = append(problems, fmt.Sprintf("envFrom Secret %s: name each secret (secretKeyRef), so that what the container gets is visible here", from.SecretRef.Name))
		}
	}
	return problems
}

// set is what c's environment sets: envFrom ConfigMaps, then env, which takes precedence.
func (m *manifests) set(c *corev1.Container) map[string]envValue {
	out := map[string]envValue{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if cm := m.configMap(from.ConfigMapRef.Name); cm != nil {
			for k, v := range cm.Data {
				out[from.Prefix+k] = envValue{value: v}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = envValue{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = envValue{secret: e.ValueFrom.SecretKeyRef}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			v := ""
			if cm := m.configMap(e.ValueFrom.ConfigMapKeyRef.Name); cm != nil {
				v = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			}
			out[e.Name] = envValue{value: v}
		default:
			out[e.Name] = envValue{other: true}
		}
	}
	return out
}

// addrPort returns the port of a listen address such as ":8081".
func addrPort(addr string) (int32, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

// envExample is .env.example, the list of every setting with its default: per section
// ("" for both services, "CUSTOMERS", "CART"), each variable's default.
type envExample map[string]map[string]string

var sectionHeader = regexp.MustCompile(`^# --- (.+?) -*$`)

// readEnvExample reads the repository's .env.example: every variable the services read, with
// its default, under a header per service.
func readEnvExample(t testing.TB) envExample {
	t.Helper()
	f, err := os.Open("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	out := envExample{}
	section := "?"
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if h := sectionHeader.FindStringSubmatch(line); h != nil {
			switch h[1] {
			case "both services":
				section = ""
			default:
				section = strings.ToUpper(h[1])
			}
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if out[section] == nil {
			out[section] = map[string]string{}
		}
		out[section][name] = value
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// binaryDefault is the value a service takes for name when it is unset: .env.example's, but
// for APP_ENV, which .env.example sets to development for `make run` while the binaries default
// to production.
func (e envExample) binaryDefault(name string) string {
	if name == "APP_ENV" {
		return "production"
	}
	for _, vars := range e {
		if v, ok := vars[name]; ok {
			return v
		}
	}
	return ""
}

// known reports whether name is a variable .env.example lists, in any section.
func (e envExample) known(name string) bool {
	for _, vars := range e {
		if _, ok := vars[name]; ok {
			return true
		}
	}
	return false
}
