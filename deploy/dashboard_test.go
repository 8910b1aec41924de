package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	dashboardFile   = "../docker/observability/grafana/dashboards/shop.json"
	datasourcesFile = "../docker/observability/grafana/provisioning/datasources/datasources.yaml"
)

// dashboardPanel is the part of a Grafana panel this test reads; rows nest their panels.
type dashboardPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *dashboardDSRef    `json:"datasource"`
	Targets    []dashboardTarget  `json:"targets"`
	Panels     []dashboardPanel   `json:"panels"`
	GridPos    map[string]float64 `json:"gridPos"`
}

type dashboardDSRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardTarget struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource *dashboardDSRef `json:"datasource"`
}

type dashboard struct {
	UID    string           `json:"uid"`
	Title  string           `json:"title"`
	Panels []dashboardPanel `json:"panels"`
}

// query is one PromQL expression of the dashboard, where it is.
type query struct {
	at, expr string
}

// readDashboard reads shop.json and returns its panels (rows' included) and every query.
func readDashboard(t testing.TB) (*dashboard, []dashboardPanel, []query) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var panels []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	var queries []query
	for _, p := range panels {
		for _, tg := range p.Targets {
			queries = append(queries, query{fmt.Sprintf("panel %d %q, target %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	return &d, panels, queries
}

// grafanaVariables are the dashboard's variables and what a test query puts in their place.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")

var leftoverVariable = regexp.MustCompile(`\$\{?\w+`)

// expand replaces Grafana's variables in expr by values Prometheus can parse.
func expand(expr string) (string, error) {
	e := grafanaVariables.Replace(expr)
	if v := leftoverVariable.FindString(e); v != "" {
		return "", fmt.Errorf("variable %s: give it a value in grafanaVariables", v)
	}
	return e, nil
}

// TestDashboard: every panel of the Grafana dashboard queries a provisioned data source, each
// query selects only series the services export, and the panels issue #13 asks for are there.
func TestDashboard(t *testing.T) {
	d, panels, queries := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: no uid or title", dashboardFile)
	}
	uids := provisionedDatasources(t)
	ids, titles := map[int]bool{}, map[string]bool{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if titles[p.Title] {
			t.Errorf("panel title %q twice", p.Title)
		}
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		if p.Datasource == nil || uids[p.Datasource.UID] != "prometheus" {
			t.Errorf("panel %q: data source %v is not a provisioned Prometheus", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && uids[tg.Datasource.UID] != "prometheus" {
				t.Errorf("panel %q, target %s: data source %v is not a provisioned Prometheus", p.Title, tg.RefID, tg.Datasource)
			}
		}
	}

	referenced := map[string]bool{}
	for _, q := range queries {
		e, err := expand(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.at, err)
			continue
		}
		for _, p := range unknownMetrics(e) {
			t.Errorf("%s: %s", q.at, p)
		}
		names, _ := promqlMetricNames(e)
		for _, n := range names {
			referenced[n] = true
		}
		if strings.Contains(e, "Canceled") || strings.Contains(e, "DeadlineExceeded") {
			t.Errorf("%s: counts Canceled or DeadlineExceeded, which are the client's doing", q.at)
		}
	}
	// What the dashboard must show (issue #13): each series is on some panel.
	for _, n := range []string{
		"grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
		"http_server_requests_total", "http_server_request_duration_seconds_bucket",
		"grpc_client_handled_total", "grpc_client_handling_seconds_bucket",
		"go_sql_in_use_connections", "go_sql_max_open_connections", "go_sql_wait_count_total",
		"customers_logins_total", "cart_customers_reachable",
	} {
		if !referenced[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
	for _, want := range []string{
		`grpc_code=~"Internal|Unknown|DataLoss|Unavailable|Unimplemented"`,
		`histogram_quantile(0.5, sum by (service, grpc_service, grpc_method, le) (rate(grpc_server_handling_seconds_bucket`,
		`histogram_quantile(0.99, sum by (service, grpc_service, grpc_method, le) (rate(grpc_server_handling_seconds_bucket`,
		`customers_logins_total{result="throttled"}`,
		`grpc_method=~"ValidateTokens?"`,
	} {
		if !slices.ContainsFunc(queries, func(q query) bool { return strings.Contains(q.expr, want) }) {
			t.Errorf("no query has %s", want)
		}
	}
}

// TestDashboardQueries: Prometheus parses every query of the dashboard (promtool check rules
// on a rules file with one recording rule per query).
func TestDashboardQueries(t *testing.T) {
	_, _, queries := readDashboard(t)
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		e, err := expand(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.at, err)
			continue
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: e})
	}
	y, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.rules.yaml"), y, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := runPromtool(t, dir, "check", "rules", "dashboard.rules.yaml"); !ok {
		// promtool names the rule; list the queries by number so it can be found.
		var list strings.Builder
		for i, q := range queries {
			fmt.Fprintf(&list, "  dashboard:query_%d: %s\n", i, q.at)
		}
		t.Errorf("promtool check rules on the dashboard's queries:\n%s\n%s", out, list.String())
	}
}

// provisionedDatasources returns Grafana's provisioned data sources: type by uid.
func provisionedDatasources(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(datasourcesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct {
			UID  string `json:"uid"`
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", datasourcesFile, err)
	}
	out := map[string]string{}
	for _, d := range f.Datasources {
		out[d.UID] = d.Type
	}
	return out
}
