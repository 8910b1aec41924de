package deploy

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// knownMetrics are the series the services export (docs/observability.md, API.md "Metrics,
// request ids, traces"), plus Prometheus' own up. An alert or a dashboard panel may reference
// these only, so that a renamed series fails a test instead of a silent empty graph.
var knownMetrics = func() map[string]bool {
	names := []string{
		// go-grpc-middleware providers/prometheus, server and (cart's customers client) client.
		"grpc_server_started_total", "grpc_server_handled_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
		"grpc_client_started_total", "grpc_client_handled_total", "grpc_client_msg_received_total", "grpc_client_msg_sent_total",
		// REST, by grpc-gateway path pattern.
		"http_server_requests_total",
		// client_golang's collectors.NewDBStatsCollector.
		"go_sql_max_open_connections", "go_sql_open_connections", "go_sql_in_use_connections", "go_sql_idle_connections",
		"go_sql_wait_count_total", "go_sql_wait_duration_seconds_total",
		"go_sql_max_idle_closed_total", "go_sql_max_idle_time_closed_total", "go_sql_max_lifetime_closed_total",
		// The Go and process collectors (the names the dashboard uses).
		"go_goroutines", "go_threads", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
		// The services' own.
		"customers_logins_total", "customers_password_checks_total", "customers_token_validations_total", "cart_customers_reachable",
		"shop_tls_certificate_expiry_timestamp_seconds",
		// The events between the services (foundation/events).
		"customers_outbox_pending", "customers_outbox_oldest_seconds", "cart_events_total",
		// Prometheus' own, per target.
		"up",
	}
	histograms := []string{
		"grpc_server_handling_seconds", "grpc_client_handling_seconds", "http_server_request_duration_seconds",
		"batch_fetch_keys", "go_gc_duration_seconds", "cart_event_lag_seconds",
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			m[h+suffix] = true
		}
	}
	return m
}()

// unknownMetrics returns the problems of a PromQL expression: a structure that cannot parse
// (promtool checks the full grammar) and series names outside knownMetrics.
func unknownMetrics(expr string) []string {
	names, err := promqlMetricNames(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, n := range names {
		if !knownMetrics[n] {
			problems = append(problems, fmt.Sprintf("references %s, which no service exports", n))
		}
	}
	return problems
}

// aggregations are PromQL's aggregation operators, which may stand before their by/without
// clause instead of their parenthesis.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promqlMetricNames returns the metric names a PromQL expression selects, in order, and an
// error when its brackets or strings do not close. It is a lexer, not a parser: promtool
// checks the grammar; this finds the names, which promtool cannot list.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	var stack []byte // open ( [ {
	closing := map[byte]byte{')': '(', ']': '[', '}': '{'}
	inBraces := func() bool { return slices.Contains(stack, '{') || slices.Contains(stack, '[') }
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }
	nextNonSpace := func(i int) byte {
		for ; i < len(expr); i++ {
			if c := expr[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				return c
			}
		}
		return 0
	}
	// skipLabels: the next "(" opens a label list (by, without, on, ignoring, group_left).
	skipLabels := false
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' {
					j++
				}
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			i = j + 1
		case c == '(' || c == '[' || c == '{':
			if c == '(' && skipLabels && !inBraces() {
				j := strings.IndexByte(expr[i:], ')')
				if j < 0 {
					return nil, fmt.Errorf("unclosed label list at offset %d", i)
				}
				i += j + 1
				skipLabels = false
				continue
			}
			stack = append(stack, c)
			i++
		case c == ')' || c == ']' || c == '}':
			if len(stack) == 0 || stack[len(stack)-1] != closing[c] {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			stack = stack[:len(stack)-1]
			i++
		case '0' <= c && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			if inBraces() {
				continue // a label name, or a duration in a range
			}
			switch strings.ToLower(word) {
			case "by", "without", "on", "ignoring", "group_left", "group_right":
				skipLabels = nextNonSpace(i) == '('
				continue
			case "bool", "offset", "and", "or", "unless", "atan2", "inf", "nan":
				continue
			}
			if aggregations[word] || nextNonSpace(i) == '(' {
				continue // a function or an aggregation
			}
			names = append(names, word)
		default:
			i++
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	if strings.TrimSpace(expr) == "" {
		return nil, fmt.Errorf("empty expression")
	}
	return names, nil
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr    string
		want    []string
		wantErr bool
	}{
		{expr: `up`, want: []string{"up"}},
		{expr: `sum by (service, le) (rate(grpc_server_handling_seconds_bucket{grpc_type="unary", le=~"0.5|1"}[5m]))`, want: []string{"grpc_server_handling_seconds_bucket"}},
		{expr: `histogram_quantile(0.99, sum without (pod) (rate(a_bucket[5m:1m] offset 1h)))`, want: []string{"a_bucket"}},
		{expr: `a / on (service) group_left (db_name) b > bool 0.5 or vector(1) unless c`, want: []string{"a", "b", "c"}},
		{expr: `sum(rate(x{code="a)b{"}[$__rate_interval])) # a comment with y`, want: []string{"x"}},
		{expr: `max by(service)(z) == Inf`, want: []string{"z"}},
		{expr: `topk(5, sum by (route) (rate(w[5m])))`, want: []string{"w"}},
		{expr: `rate(x[5m]`, wantErr: true},
		{expr: `x{a="b}`, wantErr: true},
		{expr: `sum(x))`, wantErr: true},
		{expr: ` `, wantErr: true},
	}
	for _, tt := range tests {
		got, err := promqlMetricNames(tt.expr)
		if (err != nil) != tt.wantErr {
			t.Errorf("promqlMetricNames(%q): got error %v, want error %v", tt.expr, err, tt.wantErr)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("promqlMetricNames(%q): got %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// checkMetrics: every service pod serves metrics on a container port named metrics, the one its
// *_METRICS_ADDR listens on; in production, no NetworkPolicy admits any peer but Prometheus'
// pods in the namespace monitoring to that port.
func checkMetrics(m *manifests, _ envExample) []string {
	var problems []string
	for _, d := range m.deployments {
		w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
		for prefix, c := range shopContainers(w) {
			env, _ := m.env(c)
			port, err := addrPort(env[prefix+"_METRICS_ADDR"].value)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %s_METRICS_ADDR: %v (Prometheus scrapes every pod)", w, prefix, err))
				continue
			}
			if containerPort(c, intstr.FromString("metrics")) != port {
				problems = append(problems, fmt.Sprintf("%s: no container port metrics on %d, where %s_METRICS_ADDR listens", w, port, prefix))
			}
			if m.variant.production {
				problems = append(problems, m.checkMetricsIngress(w, port)...)
			}
		}
	}
	return problems
}

// monitoringPeer reports whether peer admits Prometheus' pods in the namespace monitoring and
// nothing else.
func monitoringPeer(peer networkingv1.NetworkPolicyPeer) bool {
	ns := map[string]string{"kubernetes.io/metadata.name": "monitoring"}
	other := map[string]string{"kubernetes.io/metadata.name": "shop"}
	return peer.IPBlock == nil &&
		peer.NamespaceSelector != nil && selects(peer.NamespaceSelector, ns) && !selects(peer.NamespaceSelector, other) &&
		peer.PodSelector != nil && (len(peer.PodSelector.MatchLabels) > 0 || len(peer.PodSelector.MatchExpressions) > 0)
}

func (m *manifests) checkMetricsIngress(w workload, port int32) []string {
	var problems []string
	isolated, admitsPrometheus := false, false
	for _, np := range m.networkPolicies {
		if !selects(&np.Spec.PodSelector, w.pod.Labels) || !slices.Contains(policyTypes(np), networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for i, rule := range np.Spec.Ingress {
			if !opensPort(rule.Ports, w, port) {
				continue
			}
			if len(rule.From) == 0 {
				problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens the metrics port of %s to everyone", np.Name, i, w))
			}
			for _, peer := range rule.From {
				if !monitoringPeer(peer) {
					problems = append(problems, fmt.Sprintf("NetworkPolicy %s, ingress rule %d: opens the metrics port of %s beyond Prometheus' pods in the namespace monitoring", np.Name, i, w))
					continue
				}
				admitsPrometheus = true
			}
		}
	}
	switch {
	case !isolated:
		problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy restricts ingress, so its metrics port is open to everyone", w))
	case !admitsPrometheus:
		problems = append(problems, fmt.Sprintf("%s: no NetworkPolicy admits Prometheus to its metrics port", w))
	}
	return problems
}

// checkMonitoring: each PodMonitor selects service pods and scrapes a port they have at
// /metrics, each service is scraped once; each alert has an expression on known series, a
// for, a severity and summary and description annotations.
func checkMonitoring(m *manifests, _ envExample) []string {
	var problems []string
	scraped := map[string]int{}
	for _, pm := range m.podMonitors {
		selected := false
		for _, d := range m.deployments {
			w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
			if !selects(&pm.Spec.Selector, w.pod.Labels) {
				continue
			}
			selected = true
			scraped[d.Name]++
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				switch {
				case ep.Port == nil:
					problems = append(problems, fmt.Sprintf("PodMonitor %s: an endpoint without a port name", pm.Name))
				case !slices.ContainsFunc(w.pod.Spec.Containers, func(c corev1.Container) bool { return containerPort(&c, intstr.FromString(*ep.Port)) != 0 }):
					problems = append(problems, fmt.Sprintf("PodMonitor %s: scrapes port %s, which %s's pods do not have", pm.Name, *ep.Port, w))
				}
				if ep.Path != "/metrics" {
					problems = append(problems, fmt.Sprintf("PodMonitor %s: path %q, want /metrics", pm.Name, ep.Path))
				}
				if !slices.ContainsFunc(ep.RelabelConfigs, func(r monitoringv1.RelabelConfig) bool { return r.TargetLabel == "service" }) {
					problems = append(problems, fmt.Sprintf("PodMonitor %s: no relabeling sets the service label the alerts group by", pm.Name))
				}
			}
		}
		if !selected {
			problems = append(problems, fmt.Sprintf("PodMonitor %s selects no Deployment's pods", pm.Name))
		}
		if len(pm.Spec.ScrapeProtocols) == 0 || pm.Spec.ScrapeProtocols[0] != monitoringv1.OpenMetricsText1_0_0 {
			problems = append(problems, fmt.Sprintf("PodMonitor %s: OpenMetrics is not the first scrape protocol, so exemplars are lost", pm.Name))
		}
	}
	if len(m.podMonitors) > 0 {
		for _, d := range m.deployments {
			w := workload{kind: "Deployment", name: d.Name, pod: &d.Spec.Template, serving: true}
			if len(shopContainers(w)) > 0 && scraped[d.Name] != 1 {
				problems = append(problems, fmt.Sprintf("Deployment %s: %d PodMonitors scrape it, want 1", d.Name, scraped[d.Name]))
			}
		}
	}
	for _, pr := range m.prometheusRules {
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				at := fmt.Sprintf("PrometheusRule %s, group %s, rule %s%s", pr.Name, g.Name, r.Alert, r.Record)
				for _, p := range unknownMetrics(r.Expr.String()) {
					problems = append(problems, at+": "+p)
				}
				if r.Alert == "" {
					continue
				}
				if r.For == nil || *r.For == "" {
					problems = append(problems, at+": no for: a single bad scrape would page")
				}
				if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
					problems = append(problems, fmt.Sprintf("%s: severity %q, want critical, warning or info", at, s))
				}
				for _, a := range []string{"summary", "description"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						problems = append(problems, fmt.Sprintf("%s: no %s annotation", at, a))
					}
				}
			}
		}
	}
	return problems
}

// promtool returns the path of Prometheus' promtool (Debian: apt-get install prometheus). A test
// that needs it skips without it, but fails when CI is set.
func promtool(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is not installed (Debian: apt-get install prometheus), and CI requires it")
		}
		t.Skip("promtool is not installed (Debian: apt-get install prometheus)")
	}
	return p
}

// runPromtool runs promtool in dir and returns its output and whether it succeeded.
func runPromtool(t testing.TB, dir string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return string(out), err == nil
}

// rulesFile returns the rule groups of every PrometheusRule of m as one Prometheus rules file.
func rulesFile(t testing.TB, m *manifests) []byte {
	t.Helper()
	var spec monitoringv1.PrometheusRuleSpec
	for _, pr := range m.prometheusRules {
		spec.Groups = append(spec.Groups, pr.Spec.Groups...)
	}
	y, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// observabilityVariant is the build that carries the PrometheusRule.
func observabilityVariant(t testing.TB) variant {
	t.Helper()
	for _, v := range variants {
		if slices.Contains(v.components, "components/observability") && v.production {
			return v
		}
	}
	t.Fatal("no production variant with components/observability")
	return variant{}
}

// TestAlertRules checks the alert rules as Prometheus loads them (promtool check rules) and
// runs their unit tests (components/observability/alerts_test.yaml, promtool test rules) on
// the rules as kustomize builds them.
func TestAlertRules(t *testing.T) {
	m := build(t, observabilityVariant(t))
	if len(m.prometheusRules) == 0 {
		t.Fatal("the build has no PrometheusRule")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rulesFile(t, m), 0o600); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("components/observability/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := runPromtool(t, dir, "check", "rules", "rules.yaml"); !ok {
		t.Errorf("promtool check rules:\n%s", out)
	}
	if out, ok := runPromtool(t, dir, "test", "rules", "alerts_test.yaml"); !ok {
		t.Errorf("promtool test rules:\n%s", out)
	}

	// Every alert is unit-tested.
	for _, pr := range m.prometheusRules {
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" && !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
					t.Errorf("alert %s: no test in alerts_test.yaml", r.Alert)
				}
			}
		}
	}
}

// TestPromtoolRejectsBrokenRules: promtool, as TestAlertRules and TestDashboardQueries run
// it, fails on an expression that does not parse.
func TestPromtoolRejectsBrokenRules(t *testing.T) {
	dir := t.TempDir()
	rules := "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(rate(up[5m]) > 1\n"
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := runPromtool(t, dir, "check", "rules", "rules.yaml"); ok {
		t.Errorf("promtool check rules accepted an unclosed parenthesis:\n%s", out)
	}
}

// everyone is a NetworkPolicy peer that admits every pod of every namespace.
var everyone = networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}
