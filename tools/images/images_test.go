package images_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acme/shop/foundation/database/dbtest"
	"github.com/acme/shop/foundation/poll"
)

// kubernetes are the docker run flags that give a container what the deploy manifests give a
// pod: a read-only root, the numeric non-root user, no capabilities, no privilege escalation.
// The host network, because this machine's daemon has no bridge.
var kubernetes = []string{"--read-only", "--user", "65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--network", "host"}

// TestImages runs both images against their own PostgreSQL databases: migrate, serve until
// ready, a login at customers and a cart read at cart (which asks customers for the token),
// the healthcheck subcommand's exit codes and the images' HEALTHCHECK, and a docker stop
// (SIGTERM) of cart under load, in which every request sent is answered.
func TestImages(t *testing.T) {
	requireDocker(t)
	customersImage, cartImage := images(t)
	ip := loopbackIP()
	customersEnv := customersEnvAt(ip, dbtest.PostgresDSN(t))
	cartEnv := cartEnvAt(ip, ip, dbtest.PostgresDSN(t))

	migrate(t, customersImage, customersEnv)
	migrate(t, cartImage, cartEnv)
	customers := start(t, customersImage, customersEnv, "http://"+ip+":8081")
	cart := start(t, cartImage, cartEnv, "http://"+ip+":8082")

	token := login(t, customers.url)
	if code, body := getCart(cart.url, token); code != http.StatusOK {
		t.Fatalf("GET /api/v1/carts/me = %d %s, want 200", code, body)
	}

	for _, c := range []struct {
		image string
		env   map[string]string
	}{{customersImage, customersEnv}, {cartImage, cartEnv}} {
		if out, err := dockerRun(c.image, c.env, "--rm", "healthcheck"); err != nil {
			t.Errorf("%s healthcheck of a ready service: %v\n%s", c.image, err, out)
		}
	}

	// The image's own HEALTHCHECK (what docker and compose run) passes in the read-only root.
	for _, c := range []container{customers, cart} {
		poll.Until(t, func() error {
			out, err := exec.Command("docker", "inspect", "--format", "{{.State.Health.Status}}", c.name).Output()
			if err != nil {
				return err
			}
			if status := strings.TrimSpace(string(out)); status != "healthy" {
				return fmt.Errorf("%s health: %s", c.name, status)
			}
			return nil
		})
	}

	lb := startLoad(t, token, cart.url)
	lb.waitServed(t, cart.url)
	lb.stop(t, cart)
	t.Logf("docker stop of cart under load: %d requests answered", lb.finish(t)[cart.url])
	if out, err := dockerRun(cartImage, cartEnv, "--rm", "healthcheck"); err == nil {
		t.Errorf("cart healthcheck of a stopped service succeeded\n%s", out)
	} else if code := (*exec.ExitError)(nil); !errors.As(err, &code) || code.ExitCode() != 1 {
		t.Errorf("cart healthcheck of a stopped service: %v, want exit code 1", err)
	}
}

func requireDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "info").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Docker is required in CI (.ci/run starts dockerd): docker info: %v", err)
		}
		t.Skipf("no Docker daemon answers (docker info: %v)", err)
	}
}

// imageRepoVersion returns the repository prefix and the tag of the images `make images`
// builds for this working tree (IMAGE_REPO and VERSION as scripts/images.sh reads them).
func imageRepoVersion(t *testing.T) (repo, version string) {
	t.Helper()
	repo = os.Getenv("IMAGE_REPO")
	if repo == "" {
		repo = "ghcr.io/acme"
	}
	version = os.Getenv("VERSION")
	if version == "" {
		version = git(t, "describe", "--tags", "--always", "--dirty")
	}
	return repo, version
}

// images returns the references of the images `make images` built for this commit (IMAGE_REPO
// and VERSION as it reads them), building them first if they are absent, and checks what every
// image must carry: its user and its OCI labels.
func images(t *testing.T) (customers, cart string) {
	t.Helper()
	repo, version := imageRepoVersion(t)
	customers, cart = repo+"/shop-customers:"+version, repo+"/shop-cart:"+version
	if exec.Command("docker", "image", "inspect", customers, cart).Run() != nil {
		cmd := exec.Command("../../scripts/images.sh")
		cmd.Env = append(os.Environ(), "IMAGE_REPO="+repo, "VERSION="+version)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("scripts/images.sh: %v\n%s", err, out)
		}
	}
	revision := git(t, "rev-parse", "HEAD")
	for _, image := range []string{customers, cart} {
		out, err := exec.Command("docker", "image", "inspect", "--format", "{{json .Config}}", image).Output()
		if err != nil {
			t.Fatalf("docker image inspect %s: %v", image, err)
		}
		var config struct {
			User   string
			Labels map[string]string
		}
		if err := json.Unmarshal(out, &config); err != nil {
			t.Fatal(err)
		}
		if config.User != "65532:65532" {
			t.Errorf("%s runs as %q, want 65532:65532", image, config.User)
		}
		if got := config.Labels["org.opencontainers.image.revision"]; got != revision {
			t.Errorf("%s label revision = %q, want %q", image, got, revision)
		}
		if config.Labels["org.opencontainers.image.source"] == "" {
			t.Errorf("%s has no org.opencontainers.image.source label", image)
		}
	}
	return customers, cart
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// dockerRun runs image with the Kubernetes flags, env, the extra docker flags and the
// subcommand (the last of flags), and returns its output.
func dockerRun(image string, env map[string]string, flags ...string) ([]byte, error) {
	args := append([]string{"run"}, kubernetes...)
	for k, v := range env {
		args = append(args, "-e", k+"="+v)
	}
	args = append(args, flags[:len(flags)-1]...)
	args = append(args, image, flags[len(flags)-1])
	return exec.Command("docker", args...).CombinedOutput()
}

// container is a service running in a container.
type container struct {
	name string
	url  string // of its HTTP server
}

// start serves image in a detached container, removed when the test ends, and waits until it
// is ready.
func start(t *testing.T, image string, env map[string]string, url string) container {
	t.Helper()
	name := fmt.Sprintf("shop-images-test-%x", rand.Uint64())
	if out, err := dockerRun(image, env, "-d", "--name", name, "serve"); err != nil {
		t.Fatalf("docker run %s: %v\n%s", image, err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %s (%s):\n%s", name, image, logs(name))
		}
		_ = exec.Command("docker", "rm", "-f", name).Run()
	})
	poll.Until(t, func() error {
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.Running}}", name).Output()
		if err != nil || strings.TrimSpace(string(out)) != "true" {
			t.Fatalf("%s is not running (%v)\n%s", image, err, logs(name))
		}
		res, err := http.Get(url + "/readyz")
		if err != nil {
			return err
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", res.Status)
		}
		return nil
	})
	return container{name: name, url: url}
}

func logs(name string) string {
	out, _ := exec.Command("docker", "logs", name).CombinedOutput()
	return string(out)
}

func exitCode(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.ExitCode}}", name).Output()
	if err != nil {
		t.Fatalf("docker inspect %s: %v", name, err)
	}
	var code int
	if _, err := fmt.Sscan(string(out), &code); err != nil {
		t.Fatal(err)
	}
	return code
}

// login logs a demo user in at customers and returns the access token.
func login(t *testing.T, customersURL string) string {
	t.Helper()
	res, err := http.Post(customersURL+"/api/v1/auth/login", "application/json",
		strings.NewReader(`{"email":"nonadmin3@email.com","password":"testPass123"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK || body.AccessToken == "" {
		t.Fatalf("login = %s, %v, want 200 with an access_token", res.Status, err)
	}
	return body.AccessToken
}

// noKeepAlive opens a connection per request, so that a refused connection means a request
// the server never accepted, and any other failure one it accepted and did not answer.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func getCart(cartURL, token string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, cartURL+"/api/v1/carts/me", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := noKeepAlive.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(bytes.TrimSpace(b))
}

// load reads carts from several goroutines through a balancer that sends each request to the
// next of its backends, as a Service sends to the ready replicas behind it. Every request it
// sends must be answered with 200.
type load struct {
	token string
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu       sync.Mutex
	backends []string
	next     int
	served   map[string]int // answered requests by backend
	failed   []string
}

func startLoad(t *testing.T, token string, backends ...string) *load {
	t.Helper()
	l := &load{token: token, done: make(chan struct{}), backends: backends, served: map[string]int{}}
	for range 8 {
		l.wg.Go(l.work)
	}
	t.Cleanup(func() { l.finish(t) })
	return l
}

func (l *load) work() {
	for {
		select {
		case <-l.done:
			return
		default:
		}
		l.mu.Lock()
		var url string
		if len(l.backends) > 0 {
			url = l.backends[l.next%len(l.backends)]
			l.next++
		}
		l.mu.Unlock()
		if url == "" {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		code, body := getCart(url, l.token)
		l.mu.Lock()
		if code == http.StatusOK {
			l.served[url]++
		} else {
			l.failed = append(l.failed, fmt.Sprintf("GET %s/api/v1/carts/me = %d %s", url, code, body))
		}
		l.mu.Unlock()
	}
}

// add puts a ready replica behind the balancer.
func (l *load) add(url string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.backends = append(l.backends, url)
}

// waitServed waits until the replica at url has answered one more request of the load.
func (l *load) waitServed(t *testing.T, url string) {
	t.Helper()
	l.mu.Lock()
	before := l.served[url]
	l.mu.Unlock()
	poll.Until(t, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.served[url] == before {
			return fmt.Errorf("%s answered no request of the load yet", url)
		}
		return nil
	})
}

// stop sends c SIGTERM (docker stop) under the load and, like a Service, stops sending to it at
// its first failed readiness probe, which comes at SIGTERM, a drain delay before c stops
// listening; a client still sending then would meet the reset of the connections left in the
// listen backlog, which no server can answer. c must exit 0.
func (l *load) stop(t *testing.T, c container) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() {
		out, err := exec.Command("docker", "stop", "--time", "60", c.name).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		stopped <- err
	}()
	for {
		res, err := noKeepAlive.Get(c.url + "/readyz")
		if err != nil {
			break
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusOK {
			break
		}
	}
	l.mu.Lock()
	l.backends = slices.DeleteFunc(l.backends, func(b string) bool { return b == c.url })
	l.mu.Unlock()
	if err := <-stopped; err != nil {
		t.Fatalf("docker stop %s: %v", c.name, err)
	}
	if code := exitCode(t, c.name); code != 0 {
		t.Errorf("%s exited with %d after docker stop, want 0 (a graceful stop)\n%s", c.name, code, logs(c.name))
	}
}

// finish stops the load, fails the test for each request not answered with 200, and returns
// the answered requests by backend.
func (l *load) finish(t *testing.T) map[string]int {
	t.Helper()
	l.once.Do(func() {
		close(l.done)
		l.wg.Wait()
		for _, f := range l.failed {
			t.Error(f)
		}
		if len(l.served) == 0 {
			t.Error("no request of the load was answered")
		}
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.served)
}
