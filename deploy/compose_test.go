package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of docker-compose.yaml this test reads (anchors and merge keys
// resolved by the YAML decoder).
type composeFile struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Profiles    []string          `json:"profiles"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Ports       []string          `json:"ports"`
		Volumes     []string          `json:"volumes"`
		ReadOnly    bool              `json:"read_only"`
		Tmpfs       []string          `json:"tmpfs"`
		CapDrop     []string          `json:"cap_drop"`
		SecurityOpt []string          `json:"security_opt"`
		MemLimit    string            `json:"mem_limit"`
		PidsLimit   int               `json:"pids_limit"`
	} `json:"services"`
}

// observabilityServices are the services of the compose profile observability.
var observabilityServices = []string{"otel-collector", "jaeger", "prometheus", "grafana"}

func readYAML(t testing.TB, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// composeDefault matches a compose interpolation with a default for an unset variable only:
// ${NAME-default} (an empty value passes through; an empty <SVC>_METRICS_ADDR switches
// metrics off).
var composeDefault = regexp.MustCompile(`^\$\{(\w+)-(.*)\}$`)

// TestComposeObservability: the profile observability runs the collector, Jaeger, Prometheus
// and Grafana from pinned images, only in that profile and only on loopback; Prometheus scrapes
// the metrics ports the services listen on (as .env.example sets them); the services export
// spans when OTEL_EXPORTER_OTLP_ENDPOINT is set; every mounted configuration file exists.
func TestComposeObservability(t *testing.T) {
	var c composeFile
	readYAML(t, "../docker-compose.yaml", &c)
	vars := readEnvExample(t)

	for _, name := range observabilityServices {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("docker-compose.yaml: no service %s", name)
			continue
		}
		if !slices.Equal(s.Profiles, []string{"observability"}) {
			t.Errorf("%s: profiles %q, want [observability]: it must not start with a plain `docker compose up`", name, s.Profiles)
		}
		if _, tag, digest := splitImage(s.Image); digest == "" && (tag == "" || tag == "latest") {
			t.Errorf("%s: image %s is not pinned", name, s.Image)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %s is published beyond loopback", name, p)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./docker/observability/") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("%s: mounts %s: %v", name, src, err)
				}
			}
		}
	}
	for _, name := range []string{"customers", "cart"} {
		if s := c.Services[name]; len(s.Profiles) > 0 {
			t.Errorf("%s: in profiles %q: it must start without one", name, s.Profiles)
		}
	}
	for _, p := range []struct {
		ui   string
		port string
	}{{"grafana", "127.0.0.1:3000:3000"}, {"prometheus", "127.0.0.1:9090:9090"}, {"jaeger", "127.0.0.1:16686:16686"}} {
		if !slices.Contains(c.Services[p.ui].Ports, p.port) {
			t.Errorf("%s: UI not published on %s", p.ui, p.port)
		}
	}
	if cmd := c.Services["prometheus"].Command; !slices.Contains(cmd, "--enable-feature=exemplar-storage") {
		t.Errorf("prometheus: command %q does not keep exemplars (--enable-feature=exemplar-storage)", cmd)
	}
	g := c.Services["grafana"].Environment
	if g["GF_AUTH_ANONYMOUS_ENABLED"] != "true" || g["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Errorf("grafana: anonymous access is not view-only (%q, %q)", g["GF_AUTH_ANONYMOUS_ENABLED"], g["GF_AUTH_ANONYMOUS_ORG_ROLE"])
	}

	// Prometheus scrapes each service where its metrics listen.
	targets := prometheusTargets(t)
	for name, prefix := range map[string]string{"customers": "CUSTOMERS", "cart": "CART"} {
		env := c.Services[name].Environment
		if got, want := env["OTEL_EXPORTER_OTLP_ENDPOINT"], "${OTEL_EXPORTER_OTLP_ENDPOINT:-}"; got != want {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT is %q, want %q", name, got, want)
		}
		v := env[prefix+"_METRICS_ADDR"]
		m := composeDefault.FindStringSubmatch(v)
		if m == nil || m[1] != prefix+"_METRICS_ADDR" {
			t.Errorf("%s: %s_METRICS_ADDR is %q, want ${%s_METRICS_ADDR-...}", name, prefix, v, prefix)
			continue
		}
		if def := vars[prefix][prefix+"_METRICS_ADDR"]; m[2] != def {
			t.Errorf("%s: %s_METRICS_ADDR defaults to %q, .env.example to %q", name, prefix, m[2], def)
		}
		port, err := addrPort(m[2])
		if err != nil {
			t.Errorf("%s: %s_METRICS_ADDR: %v", name, prefix, err)
			continue
		}
		if want := fmt.Sprintf("%s:%d", name, port); targets[name] != want {
			t.Errorf("prometheus.yml: scrapes %q with service=%s, want %s", targets[name], name, want)
		}
	}
}

// prometheusTargets returns the target of each service label in compose's prometheus.yml.
func prometheusTargets(t testing.TB) map[string]string {
	t.Helper()
	var p struct {
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			StaticConfigs []struct {
				Targets []string          `json:"targets"`
				Labels  map[string]string `json:"labels"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readYAML(t, "../docker/observability/prometheus.yml", &p)
	out := map[string]string{}
	for _, sc := range p.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				out[st.Labels["service"]] = target
			}
		}
	}
	return out
}

// TestPrometheusConfig: Prometheus loads compose's prometheus.yml (promtool check config).
func TestPrometheusConfig(t *testing.T) {
	abs, err := filepath.Abs("../docker/observability/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if out, ok := runPromtool(t, t.TempDir(), "check", "config", abs); !ok {
		t.Errorf("promtool check config:\n%s", out)
	}
}

// TestCollectorConfig: the collector's traces pipeline receives OTLP over gRPC and HTTP,
// batches, and exports to Jaeger; every component the pipeline names is configured.
func TestCollectorConfig(t *testing.T) {
	var cfg struct {
		Receivers  map[string]map[string]any `json:"receivers"`
		Processors map[string]any            `json:"processors"`
		Exporters  map[string]struct {
			Endpoint string `json:"endpoint"`
		} `json:"exporters"`
		Extensions map[string]any `json:"extensions"`
		Service    struct {
			Extensions []string `json:"extensions"`
			Pipelines  map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
				Exporters  []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	readYAML(t, "../docker/observability/otel-collector.yaml", &cfg)
	traces, ok := cfg.Service.Pipelines["traces"]
	if !ok {
		t.Fatal("otel-collector.yaml: no traces pipeline")
	}
	for _, r := range traces.Receivers {
		if _, ok := cfg.Receivers[r]; !ok {
			t.Errorf("traces pipeline: receiver %s is not configured", r)
		}
	}
	for _, p := range traces.Processors {
		if _, ok := cfg.Processors[p]; !ok {
			t.Errorf("traces pipeline: processor %s is not configured", p)
		}
	}
	for _, e := range cfg.Service.Extensions {
		if _, ok := cfg.Extensions[e]; !ok {
			t.Errorf("extension %s is not configured", e)
		}
	}
	otlp, ok := cfg.Receivers["otlp"]["protocols"].(map[string]any)
	if !slices.Contains(traces.Receivers, "otlp") || !ok || otlp["grpc"] == nil || otlp["http"] == nil {
		t.Error("traces pipeline: no OTLP receiver on both gRPC and HTTP")
	}
	if !slices.Contains(traces.Processors, "batch") {
		t.Error("traces pipeline: no batch processor")
	}
	toJaeger := false
	for _, e := range traces.Exporters {
		exp, ok := cfg.Exporters[e]
		if !ok {
			t.Errorf("traces pipeline: exporter %s is not configured", e)
		}
		if strings.HasPrefix(e, "otlp") && exp.Endpoint == "jaeger:4317" {
			toJaeger = true
		}
	}
	if !toJaeger {
		t.Error("traces pipeline: no OTLP exporter to jaeger:4317")
	}
}

// TestGrafanaDatasources: Grafana reaches Prometheus and Jaeger by their compose names, and
// Prometheus' exemplars open traces in the Jaeger data source.
func TestGrafanaDatasources(t *testing.T) {
	var f struct {
		Datasources []struct {
			UID      string `json:"uid"`
			Type     string `json:"type"`
			URL      string `json:"url"`
			JSONData struct {
				ExemplarTraceIDDestinations []struct {
					Name          string `json:"name"`
					DatasourceUID string `json:"datasourceUid"`
				} `json:"exemplarTraceIdDestinations"`
			} `json:"jsonData"`
		} `json:"datasources"`
	}
	readYAML(t, datasourcesFile, &f)
	want := map[string]string{"prometheus": "http://prometheus:9090", "jaeger": "http://jaeger:16686"}
	got := map[string]string{}
	exemplars := false
	for _, d := range f.Datasources {
		got[d.Type] = d.URL
		for _, e := range d.JSONData.ExemplarTraceIDDestinations {
			if e.Name == "trace_id" && e.DatasourceUID == "jaeger" {
				exemplars = true
			}
		}
	}
	for typ, url := range want {
		if got[typ] != url {
			t.Errorf("data source %s: url %q, want %q", typ, got[typ], url)
		}
	}
	if !exemplars {
		t.Error("no Prometheus data source sends trace_id exemplars to the jaeger data source")
	}
}

// shopServices are the containers of docker-compose.yaml that run without a profile.
var shopServices = []string{"customers", "cart", "customers-db", "cart-db"}

// TestComposeHardening: the development compose file runs development mode on purpose and
// publishes nothing beyond loopback unless BIND_ADDR says so; every container of the shop and of
// the profile observability runs read-only, without capabilities or privilege escalation, with
// memory and process limits.
func TestComposeHardening(t *testing.T) {
	var c composeFile
	readYAML(t, "../docker-compose.yaml", &c)
	for _, name := range shopServices {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("docker-compose.yaml: no service %s", name)
			continue
		}
		if !s.ReadOnly || !slices.Contains(s.Tmpfs, "/tmp") {
			t.Errorf("%s: read_only %v, tmpfs %q; want a read-only root with a tmpfs on /tmp", name, s.ReadOnly, s.Tmpfs)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: cap_drop %q, security_opt %q; want [ALL] and no-new-privileges:true", name, s.CapDrop, s.SecurityOpt)
		}
		if s.MemLimit == "" || s.PidsLimit <= 0 {
			t.Errorf("%s: mem_limit %q, pids_limit %d; want both set", name, s.MemLimit, s.PidsLimit)
		}
	}
	for _, name := range observabilityServices {
		s := c.Services[name]
		if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: read_only %v, cap_drop %q, security_opt %q; want a read-only root, [ALL] and no-new-privileges:true", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		if s.MemLimit == "" || s.PidsLimit <= 0 {
			t.Errorf("%s: mem_limit %q, pids_limit %d; want both set", name, s.MemLimit, s.PidsLimit)
		}
	}
	for name, s := range c.Services {
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") && !strings.HasPrefix(p, "${BIND_ADDR:-127.0.0.1}:") {
				t.Errorf("%s: port %s is published on every interface by default", name, p)
			}
		}
	}
	for _, name := range []string{"customers", "cart"} {
		if got := c.Services[name].Environment["APP_ENV"]; got != "development" {
			t.Errorf("%s: APP_ENV %q, want development, set explicitly (the binaries default to production)", name, got)
		}
	}
	env := c.Services["customers"].Environment
	if env["CUSTOMERS_GRPC_TLS_CLIENT_CA"] == "" || env["CUSTOMERS_GRPC_TLS_CLIENT_NAMES"] != "cart" {
		t.Errorf("customers: client CA %q, client names %q; want mutual TLS pinned to cart", env["CUSTOMERS_GRPC_TLS_CLIENT_CA"], env["CUSTOMERS_GRPC_TLS_CLIENT_NAMES"])
	}
	if c.Services["cart"].Environment["CART_GRPC_TLS_CERT"] == "" {
		t.Error("cart: its gRPC port, which bearer tokens cross, is not served over TLS")
	}
}

// requiredVar is a variable compose refuses to go without: ${NAME:?message} (unset or empty)
// or ${NAME?message} (unset; empty is a choice).
var requiredVar = regexp.MustCompile(`\$\{(\w+):?\?[^}]*\}`)

// TestComposeProduction: docker-compose.production.yaml runs production mode and has no default
// for any password or secret (Grafana's admin password included): each must be set, or compose
// refuses to start.
func TestComposeProduction(t *testing.T) {
	var c composeFile
	readYAML(t, "../docker-compose.production.yaml", &c)
	for _, name := range []string{"customers", "cart"} {
		if got := c.Services[name].Environment["APP_ENV"]; got != "production" {
			t.Errorf("%s: APP_ENV %q, want production", name, got)
		}
	}
	want := map[string][]string{
		"customers-db": {"POSTGRES_PASSWORD"},
		"cart-db":      {"POSTGRES_PASSWORD"},
		"customers":    {"CUSTOMERS_DATABASE_PASSWORD", "CUSTOMERS_JWT_SECRET", "CUSTOMERS_TRUSTED_PROXIES"},
		"cart":         {"CART_DATABASE_PASSWORD", "CART_PAGE_TOKEN_SECRET"},
		"grafana":      {"GF_SECURITY_ADMIN_PASSWORD"},
	}
	for svc, vars := range want {
		for _, v := range vars {
			value := c.Services[svc].Environment[v]
			if !requiredVar.MatchString(value) || strings.Contains(value, ":-") {
				t.Errorf("%s: %s is %q, want it from a variable compose requires (${NAME:?...}) and no default", svc, v, value)
			}
		}
	}
	// Production refuses to serve without a NATS server: the file it extends names compose's.
	var base composeFile
	readYAML(t, "../docker-compose.yaml", &base)
	for name, prefix := range map[string]string{"customers": "CUSTOMERS_", "cart": "CART_"} {
		value, ok := c.Services[name].Environment[prefix+"NATS_URL"]
		if !ok {
			value = base.Services[name].Environment[prefix+"NATS_URL"]
		}
		if !strings.Contains(value, "nats://nats:4222") {
			t.Errorf("%s: %sNATS_URL is %q in production, want compose's NATS server by default", name, prefix, value)
		}
	}
}

// notInCompose are the settings of .env.example that compose does not pass to its service, and
// why; every other one of a service's settings compose passes, so that .env reaches it.
var notInCompose = map[string]string{
	"SQLITE_PATH":                         "compose runs PostgreSQL",
	"DEBUG_ADDR":                          "pprof is not published from a container",
	"DEBUG_ALLOW_NON_LOOPBACK":            "pprof is not published from a container",
	"ALLOW_PLAINTEXT_GRPC":                "compose serves gRPC over TLS",
	"ALLOW_PLAINTEXT_CUSTOMERS":           "compose runs mutual TLS between the services",
	"ALLOW_CUSTOMERS_WITHOUT_CLIENT_CERT": "compose runs mutual TLS between the services",
	"CORS_ALLOWED_ORIGINS":                "no browser application is part of compose",
	"MIGRATE_ON_START":                    "compose migrates on start (the default)",
	"GRPC_MAX_CONNECTION_AGE":             "the default suits one replica",
	"GRPC_TLS_CLIENT_CA":                  "compose sets customers' itself; cart's port takes no client certificates",
	"GRPC_TLS_CLIENT_NAMES":               "compose pins customers' to cart itself",
	"TRUSTED_PROXIES":                     "cart's only changes its logs' client addresses",
	"HTTP_ADDR":                           "fixed by compose",
	"GRPC_ADDR":                           "fixed by compose",
	"DATABASE_URL":                        "fixed by compose",
	"DATABASE_PASSWORD":                   "compose passes the database password",
	"GRPC_TLS_CERT":                       "compose mounts its own certificates",
	"GRPC_TLS_KEY":                        "compose mounts its own certificates",
	"CUSTOMERS_ADDR":                      "fixed by compose",
	"CUSTOMERS_TLS_CA":                    "compose mounts its own certificates",
	"CUSTOMERS_TLS_CERT":                  "compose mounts its own certificates",
	"CUSTOMERS_TLS_KEY":                   "compose mounts its own certificates",
	"CUSTOMERS_TLS_SERVER_NAME":           "fixed by compose",
}

// TestComposeEnvironment: every variable compose reads (${NAME...}, in either file) is listed
// in .env.example, and every setting .env.example lists for a service, bar notInCompose's, is
// passed by compose to that service, so that what README tells operators to size reaches the
// container.
func TestComposeEnvironment(t *testing.T) {
	vars := readEnvExample(t)
	interpolation := regexp.MustCompile(`\$\{(\w+)`)
	for _, file := range []string{"../docker-compose.yaml", "../docker-compose.production.yaml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range interpolation.FindAllSubmatch(b, -1) {
			if name := string(m[1]); !vars.known(name) {
				t.Errorf("%s reads %s, which .env.example does not list", filepath.Base(file), name)
			}
		}
	}
	var c composeFile
	readYAML(t, "../docker-compose.yaml", &c)
	for section, service := range map[string]string{"CUSTOMERS": "customers", "CART": "cart"} {
		env := c.Services[service].Environment
		for name := range vars[section] {
			if _, ok := env[name]; ok {
				continue
			}
			if _, ok := notInCompose[strings.TrimPrefix(name, section+"_")]; !ok {
				t.Errorf("%s: compose does not pass %s (.env.example lists it; or add it to notInCompose, saying why)", service, name)
			}
		}
	}
}

// TestComposeRepeatsNoDefault: compose passes each setting through from .env with an empty
// fallback (${NAME:-}: empty means the service's default) rather than a copy of the default,
// which would stay behind when the default changes in its declaration. A fallback of its own
// (${LOG_FORMAT:-json}) is compose's choice and must differ from the default. The listen
// addresses compose pins match its port mappings and are left out of this rule, as are the
// metrics addresses, whose empty value switches metrics off (TestComposeObservability keeps
// their fallback equal to the default). The production file may set back what the
// development file changed (APP_ENV).
func TestComposeRepeatsNoDefault(t *testing.T) {
	vars := readEnvExample(t)
	fallback := regexp.MustCompile(`^\$\{(\w+):-(.*)\}$`)
	var base composeFile
	readYAML(t, "../docker-compose.yaml", &base)
	for _, file := range []string{"../docker-compose.yaml", "../docker-compose.production.yaml"} {
		var c composeFile
		readYAML(t, file, &c)
		for svc, s := range c.Services {
			for name, value := range s.Environment {
				if !vars.known(name) || strings.HasSuffix(name, "_ADDR") {
					continue
				}
				if b, ok := base.Services[svc].Environment[name]; ok && b != value {
					continue
				}
				def := vars.binaryDefault(name)
				if m := fallback.FindStringSubmatch(value); m != nil {
					if m[2] != "" && m[2] == def {
						t.Errorf("%s: %s: %s falls back on %q, its default: write ${%s:-}", filepath.Base(file), svc, name, m[2], m[1])
					}
				} else if value == def && def != "" {
					t.Errorf("%s: %s: sets %s=%s, its default: leave it out", filepath.Base(file), svc, name, value)
				}
			}
		}
	}
}
