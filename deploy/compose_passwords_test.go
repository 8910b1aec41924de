package deploy_test

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/acme/shop/foundation/database"
	"github.com/acme/shop/foundation/database/dbtest"
)

// TestComposeProductionPasswords follows the production recipe of docker-compose.production.yaml
// with 200 pairs of passwords made as it says (`openssl rand -base64 24`: 40% of them hold a
// `/`, which a URL would need escaped) and with passwords holding each of `/ + = @ : ? # %`:
// compose's loader (compose-go, what `docker compose` runs) renders each service's environment,
// and both binaries run `migrate` with exactly that environment against a PostgreSQL of the
// test's own that asks for the passwords. Only the database's address is changed, from the
// compose host to the test server's socket.
func TestComposeProductionPasswords(t *testing.T) {
	cluster := dbtest.NewCluster(t)
	cluster.RequirePasswords()
	admin, err := database.Open(context.Background(), database.Config{DSN: cluster.DSN()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(admin) })
	for _, svc := range []string{"customers", "cart"} {
		for _, stmt := range []string{"CREATE ROLE " + svc + " LOGIN", "CREATE DATABASE " + svc + " OWNER " + svc} {
			if err := admin.Exec(stmt).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	server, err := url.Parse(cluster.DSN())
	if err != nil {
		t.Fatal(err)
	}
	socket := server.Query()
	bins := buildServices(t)

	type pair struct{ customers, cart string }
	pairs := []pair{{"/+=@:?#%", "p@ss:w/rd?x#y%z=+"}, {"%2F%40", "#?"}}
	for range 200 {
		pairs = append(pairs, pair{opensslBase64(24), opensslBase64(24)})
	}
	for _, p := range pairs {
		env := composeEnvironment(t, map[string]string{"CUSTOMERS_DB_PASSWORD": p.customers, "CART_DB_PASSWORD": p.cart})
		var wg sync.WaitGroup
		for svc, pw := range map[string]string{"customers": p.customers, "cart": p.cart} {
			var stmt string
			if err := admin.Raw("SELECT format('ALTER ROLE %I PASSWORD %L', ?::text, ?::text)", svc, pw).Scan(&stmt).Error; err != nil {
				t.Fatal(err)
			}
			if err := admin.Exec(stmt).Error; err != nil {
				t.Fatal(err)
			}
			vars := env[svc]
			prefix := strings.ToUpper(svc) + "_"
			// The compose host, replaced by the test server's socket; the rest as compose wrote it.
			host := "@" + svc + "-db:5432/" + svc + "?"
			if !strings.Contains(vars[prefix+"DATABASE_URL"], host) {
				t.Fatalf("%sDATABASE_URL = %q, want a URL of %s", prefix, vars[prefix+"DATABASE_URL"], host)
			}
			vars[prefix+"DATABASE_URL"] = strings.Replace(vars[prefix+"DATABASE_URL"], host,
				"@/"+svc+"?host="+url.QueryEscape(socket.Get("host"))+"&port="+socket.Get("port")+"&", 1)
			wg.Go(func() {
				cmd := exec.Command(bins[svc], "migrate")
				for k, v := range vars {
					cmd.Env = append(cmd.Env, k+"="+v)
				}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s migrate with the password %q, as compose renders it: %v\n%s", svc, pw, err, out)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// opensslBase64 is what `openssl rand -base64 n` prints.
func opensslBase64(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// composeEnvironment renders docker-compose.yaml with docker-compose.production.yaml, as the
// production recipe runs them, with vars (and the recipe's other settings) as the environment,
// and returns the environment of the customers and cart services.
func composeEnvironment(t *testing.T, vars map[string]string) map[string]map[string]string {
	t.Helper()
	environ := map[string]string{
		"CUSTOMERS_JWT_SECRET": opensslBase64(48), "CART_PAGE_TOKEN_SECRET": opensslBase64(48),
		"GRAFANA_ADMIN_PASSWORD": opensslBase64(24), "CUSTOMERS_TRUSTED_PROXIES": "172.18.0.1",
	}
	for k, v := range vars {
		environ[k] = v
	}
	env, err := renderProduction(environ)
	if err != nil {
		t.Fatalf("compose: %v", err)
	}
	return env
}

// renderProduction renders the production recipe's files with environ as the only environment
// and returns the environment of the customers and cart services, or compose's refusal.
func renderProduction(environ map[string]string) (map[string]map[string]string, error) {
	var list []string
	for k, v := range environ {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yaml", "../docker-compose.production.yaml"},
		cli.WithEnv(list), cli.WithWorkingDirectory(".."), cli.WithName("shop"))
	if err != nil {
		return nil, err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, name := range []string{"customers", "cart"} {
		svc, ok := project.Services[name]
		if !ok {
			return nil, fmt.Errorf("compose renders no service %s", name)
		}
		out[name] = map[string]string{}
		for k, v := range svc.Environment {
			if v != nil {
				out[name][k] = *v
			}
		}
	}
	return out, nil
}

// buildServices builds both services' binaries and returns their paths by service.
func buildServices(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	bins := map[string]string{}
	for _, svc := range []string{"customers", "cart"} {
		cmd := exec.Command("go", "build", "-o", dir, "./cmd/"+svc+"-svc")
		cmd.Dir = filepath.Join("..", svc+"-svc")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s-svc: %v\n%s", svc, err, out)
		}
		bins[svc] = filepath.Join(dir, svc+"-svc")
	}
	return bins
}
