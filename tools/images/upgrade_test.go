package images_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/acme/shop/foundation/database/dbtest"
)

// upgradeMigration is the migration the next version of cart adds: a nullable column, the
// "expand" step that keeps the running version's statements valid.
const upgradeMigration = `package migrations

import (
	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// addCartItemsNote is the migration of the upgrade test (tools/images): a nullable column.
func addCartItemsNote() *gormigrate.Migration {
	type cartItem struct {
		Note *string
	}
	return &gormigrate.Migration{
		ID: "` + upgradeMigrationID + `",
		Migrate: func(tx *gorm.DB) error {
			return tx.Table("cart_items").Migrator().AddColumn(&cartItem{}, "Note")
		},
		Rollback: func(tx *gorm.DB) error {
			return tx.Table("cart_items").Migrator().DropColumn(&cartItem{}, "Note")
		},
	}
}
`

const upgradeMigrationID = "299912310001_cart_items_note"

// TestUpgrade rolls cart from this commit's image to a next version that adds a migration, on
// one database, the way a Deployment's rolling update does, under load through a balancer that
// sends only to ready replicas: the new image refuses to serve the old schema; its migrate
// step runs while the old version serves; the old version keeps serving (and still starts) on
// the migrated schema; the new version becomes ready, then the old one is stopped. Every
// request sent is answered with 200.
func TestUpgrade(t *testing.T) {
	requireDocker(t)
	customersImage, oldCart := images(t)
	newCart := nextVersion(t)
	customersDB, cartDB := dbtest.PostgresDSN(t), dbtest.PostgresDSN(t)

	ip, oldIP, newIP := loopbackIP(), loopbackIP(), loopbackIP()
	customersEnv := customersEnvAt(ip, customersDB)
	oldEnv, newEnv := cartEnvAt(oldIP, ip, cartDB), cartEnvAt(newIP, ip, cartDB)
	migrate(t, customersImage, customersEnv)
	migrate(t, oldCart, oldEnv)
	customers := start(t, customersImage, customersEnv, "http://"+ip+":8081")
	old := start(t, oldCart, oldEnv, "http://"+oldIP+":8082")
	token := login(t, customers.url)
	lb := startLoad(t, token, old.url)

	// A new replica started before its migration has run refuses to serve the old schema (on
	// Kubernetes it would restart with back-off; the migrate step runs first so it never must).
	if out, err := dockerRun(newCart, newEnv, "--rm", "serve"); err == nil || !strings.Contains(string(out), "not applied yet") {
		t.Fatalf("new cart serving the old schema: %v, want a refusal naming the pending migration\n%s", err, out)
	}

	// The rollout: the new version's migrate step, while the old version serves.
	migrate(t, newCart, newEnv)
	if !applied(t, cartDB, upgradeMigrationID) {
		t.Fatalf("migration %s is not recorded after the new image's migrate", upgradeMigrationID)
	}
	// The old version reads and writes the migrated schema, and a replica of it still starts on
	// it (a rollback of the image needs no rollback of the schema).
	lb.waitServed(t, old.url)
	addItem(t, old.url, token)
	againIP := loopbackIP()
	oldAgain := start(t, oldCart, cartEnvAt(againIP, ip, cartDB), "http://"+againIP+":8082")
	lb.add(oldAgain.url)

	// The new version becomes ready and joins; then the old replicas stop, as the Deployment
	// scales the old ReplicaSet down.
	next := start(t, newCart, newEnv, "http://"+newIP+":8082")
	lb.add(next.url)
	lb.waitServed(t, next.url)
	addItem(t, next.url, token)
	for _, c := range []container{old, oldAgain} {
		lb.stop(t, c)
	}
	lb.waitServed(t, next.url)
	counts := lb.finish(t)
	t.Logf("requests answered by the old, the second old and the new cart: %d, %d, %d",
		counts[old.url], counts[oldAgain.url], counts[next.url])
	if code, body := getCart(next.url, token); code != http.StatusOK || !strings.Contains(body, `"quantity":2`) {
		t.Errorf("cart after the upgrade = %d %s, want the two items added through the old and the new version", code, body)
	}
}

// nextVersion builds the next version of the cart image: this working tree with
// upgradeMigration added, tagged <version>-next.
func nextVersion(t *testing.T) string {
	t.Helper()
	root := git(t, "rev-parse", "--show-toplevel")
	dir := t.TempDir()
	copyTree(t, root, dir)
	migrations := filepath.Join(dir, "cart-svc", "internal", "migrations")
	if err := os.WriteFile(filepath.Join(migrations, upgradeMigrationID+".go"), []byte(upgradeMigration), 0o600); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(migrations, "migrations.go")
	src, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	const ret = "\n\treturn all\n}"
	if strings.Count(string(src), ret) != 1 {
		t.Fatalf("%s: want one %q to append the upgrade migration to", list, ret)
	}
	src = []byte(strings.Replace(string(src), ret, "\n\treturn append(all, addCartItemsNote())\n}", 1))
	if err := os.WriteFile(list, src, 0o600); err != nil {
		t.Fatal(err)
	}

	repo, version := imageRepoVersion(t)
	cmd := exec.Command("./scripts/images.sh", "cart-svc")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "IMAGE_REPO="+repo, "VERSION="+version+"-next", "REVISION="+git(t, "rev-parse", "HEAD"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/images.sh cart-svc (next version): %v\n%s", err, out)
	}
	image := repo + "/shop-cart:" + version + "-next"
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", image).Run() })
	return image
}

// copyTree copies the files git would commit (tracked and not ignored) from root to dir.
func copyTree(t *testing.T, root, dir string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$0"`, dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy the working tree: %v\n%s", err, out)
	}
}

func migrate(t *testing.T, image string, env map[string]string) {
	t.Helper()
	if out, err := dockerRun(image, env, "--rm", "migrate"); err != nil {
		t.Fatalf("%s migrate: %v\n%s", image, err, out)
	}
}

// applied reports whether the database at dsn records the migration id.
func applied(t *testing.T, dsn, id string) bool {
	t.Helper()
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	defer func() { _ = sqlDB.Close() }()
	var n int64
	if err := db.Table("migrations").Where("id = ?", id).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func addItem(t *testing.T, cartURL, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, cartURL+"/api/v1/carts/me/items",
		strings.NewReader(`{"product_id":"00000000-0000-7000-8000-000000000101","quantity":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s/api/v1/carts/me/items = %s, want 200", cartURL, res.Status)
	}
}

// loopbackIP is a random address of 127.0.0.0/8: host networking shares the ports with
// everything else on this machine, so each container listens on an address of its own.
func loopbackIP() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+rand.IntN(250), rand.IntN(250), 1+rand.IntN(250))
}

func customersEnvAt(ip, db string) map[string]string {
	return map[string]string{
		"APP_ENV": "development", "LOG_FORMAT": "json", "CUSTOMERS_DATABASE_URL": db,
		"CUSTOMERS_MIGRATE_ON_START": "false", "CUSTOMERS_HTTP_ADDR": ip + ":8081",
		"CUSTOMERS_GRPC_ADDR": ip + ":50051", "CUSTOMERS_METRICS_ADDR": ip + ":9091",
	}
}

func cartEnvAt(ip, customersIP, db string) map[string]string {
	return map[string]string{
		"APP_ENV": "development", "LOG_FORMAT": "json", "CART_DATABASE_URL": db,
		// As on Kubernetes: after SIGTERM cart reports not ready and keeps serving until the load
		// balancer (the load's probe) has stopped sending it requests.
		"SHUTDOWN_DRAIN_DELAY":  "3s",
		"CART_MIGRATE_ON_START": "false", "CART_HTTP_ADDR": ip + ":8082", "CART_GRPC_ADDR": ip + ":50052",
		"CART_METRICS_ADDR": ip + ":9092", "CART_CUSTOMERS_ADDR": customersIP + ":50051",
	}
}
