package shoptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cluster is a control plane running from the k8s binary (tools/k8s): etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok, each its own process, all in one folder.
type cluster struct {
	bin, dir   string
	kubeconfig string
	procs      []*process
}

// process is one running component with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// token authenticates kubectl and the components: a member of system:masters.
const token = "shoptest-admin-token"

// startCluster starts the control plane and kwok with nodes, and stops it when the test ends.
func startCluster(t *testing.T, bin string) *cluster {
	t.Helper()
	c := &cluster{bin: bin, dir: t.TempDir()}
	t.Cleanup(func() { c.stop(t) })

	// etcd and the API server find etcd's socket relative to their working folder (c.dir): a
	// Unix socket needs no port, and the path stays short.
	c.start(t, "etcd", "etcd",
		"--name=default", "--data-dir=etcd",
		"--listen-client-urls=unix://etcd.sock", "--advertise-client-urls=unix://etcd.sock",
		"--listen-peer-urls=unix://etcd-peer.sock", "--initial-advertise-peer-urls=unix://etcd-peer.sock",
		"--initial-cluster=default=unix://etcd-peer.sock",
		"--log-level=warn",
	)

	writeServiceAccountKey(t, c.dir)
	write(t, filepath.Join(c.dir, "tokens.csv"), token+`,admin,admin,"system:masters"`+"\n")

	// The API server needs a fixed port (0 turns serving off); an address of its own in
	// 127.0.0.0/8 keeps it clear of other control planes on this machine. Should the address
	// be taken after all, the server exits saying so and another is tried.
	var server string
	for attempt := 0; ; attempt++ {
		ip := randomLoopback()
		server = "https://" + net.JoinHostPort(ip, "6443")
		p := c.start(t, "kube-apiserver", "kube-apiserver",
			"--etcd-servers=unix://etcd.sock",
			"--bind-address="+ip, "--advertise-address="+ip, "--secure-port=6443",
			"--cert-dir=pki",
			// The kubernetes Service's endpoints would be this loopback address, which the
			// reconciler refuses; nothing here reaches the API server through the Service.
			"--endpoint-reconciler-type=none",
			"--service-cluster-ip-range=10.96.0.0/16",
			"--service-account-issuer=https://kubernetes.default.svc",
			"--service-account-key-file=sa.pub", "--service-account-signing-key-file=sa.key",
			"--token-auth-file=tokens.csv",
			"--authorization-mode=Node,RBAC",
			"--v=0",
		)
		c.kubeconfig = filepath.Join(c.dir, "kubeconfig")
		write(t, c.kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: shoptest
    cluster:
      server: %s
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: %s
contexts:
  - name: shoptest
    context: {cluster: shoptest, user: admin}
current-context: shoptest
`, server, token))
		err := until(3*time.Minute, "the API server is ready", func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("kube-apiserver exited: %w", p.err)
			}
			_, err := c.kubectl(context.Background(), "", "get", "--raw=/readyz")
			return err == nil, nil
		})
		if err == nil {
			break
		}
		if attempt < 3 && p.exited() && strings.Contains(tail(p.log, 4000), "address already in use") {
			c.procs = c.procs[:len(c.procs)-1]
			continue
		}
		c.fail(t, err)
	}

	c.start(t, "kube-controller-manager", "kube-controller-manager",
		"--kubeconfig="+c.kubeconfig, "--secure-port=0", "--leader-elect=false",
		"--controllers=*", "--v=0",
	)
	c.start(t, "kube-scheduler", "kube-scheduler",
		"--kubeconfig="+c.kubeconfig, "--secure-port=0", "--leader-elect=false", "--v=0",
	)

	stages := kwokStages(t)
	write(t, filepath.Join(c.dir, "kwok.yaml"), stages)
	c.start(t, "kwok", "kwok",
		"--kubeconfig="+c.kubeconfig, "--config=kwok.yaml",
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr=10.244.0.1/16", "--node-ip=10.0.0.1",
		// kwok renews a Lease per node, as a kubelet does, so the node controller keeps them Ready.
		"--node-lease-duration-seconds=40",
	)

	// Three nodes in three zones: the Deployments spread over hostnames (DoNotSchedule) and a
	// rolling update surges one pod above two replicas.
	var nodes strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&nodes, `---
apiVersion: v1
kind: Node
metadata:
  name: kwok-%[1]d
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: kwok-%[1]d
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-%[1]d
    type: kwok
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
`, i)
	}
	// The dev overlay's PostgreSQL and NATS claim a volume each: the cluster's storage, here
	// one volume per claim that it binds to (no provisioner runs).
	for _, name := range []string{"postgres", "nats"} {
		fmt.Fprintf(&nodes, `---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: shoptest-%[1]s
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /var/lib/shoptest-%[1]s}
`, name)
	}
	c.mustApply(t, nodes.String())
	c.waitFor(t, 2*time.Minute, "the nodes are Ready", func() (bool, error) {
		var list struct {
			Items []struct {
				Status struct {
					Conditions []condition `json:"conditions"`
				} `json:"status"`
			} `json:"items"`
		}
		if err := c.getJSON("", &list, "get", "nodes"); err != nil {
			return false, err
		}
		ready := 0
		for _, n := range list.Items {
			if conditionTrue(n.Status.Conditions, "Ready") {
				ready++
			}
		}
		return ready == 3, nil
	})
	return c
}

// start runs the k8s binary as program in c.dir, its output in <name>.log.
func (c *cluster) start(t *testing.T, name, program string, args ...string) *process {
	t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, append([]string{program}, args...)...)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(c.dir, "kubeconfig"))
	// Should the test binary die without cleaning up (killed, a timeout), the kernel ends the
	// components too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the components, last started first; their logs are shown when the test failed.
func (c *cluster) stop(t *testing.T) {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if !p.exited() {
			_ = p.cmd.Process.Signal(os.Interrupt)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	}
	if t.Failed() {
		for _, p := range c.procs {
			t.Logf("--- %s log (last lines):\n%s", p.name, tail(p.log, 3000))
		}
	}
}

// fail reports err with what the components said last.
func (c *cluster) fail(t *testing.T, err error) {
	t.Helper()
	for _, p := range c.procs {
		if p.exited() {
			t.Logf("%s exited (%v)", p.name, p.err)
		}
	}
	t.Fatal(err)
}

// kubectl runs kubectl against the cluster with stdin, returning its output; a failed run's
// error carries stderr.
func (c *cluster) kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	out, stderr, err := c.kubectlOutputs(ctx, stdin, args...)
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, stderr)
	}
	return out, nil
}

func (c *cluster) kubectlOutputs(ctx context.Context, stdin string, args ...string) (string, string, error) {
	// The k8s binary's own kubectl: the same release as the API server, with its kustomize.
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"kubectl", "--kubeconfig=" + c.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.String(), stderr.String(), err
}

// apply applies server-side, as the deploy chapter says, either manifests on stdin or with
// more arguments (-k DIR). A warning fails it too: Pod Security only warns about a
// Deployment whose pods it would refuse, and the refusal itself would surface later as
// ReplicaSet events.
func (c *cluster) apply(stdin string, args ...string) error {
	args = append([]string{"apply", "--server-side", "--field-manager=shop-deploy"}, args...)
	if stdin != "" {
		args = append(args, "-f", "-")
	}
	out, stderr, err := c.kubectlOutputs(context.Background(), stdin, args...)
	if err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	if strings.Contains(stderr, "Warning:") {
		return fmt.Errorf("kubectl %s warned:\n%s", strings.Join(args, " "), stderr)
	}
	return nil
}

func (c *cluster) mustApply(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if err := c.apply(stdin, args...); err != nil {
		c.fail(t, err)
	}
}

// getJSON runs kubectl with -o json and decodes what it prints into v.
func (c *cluster) getJSON(namespace string, v any, args ...string) error {
	if namespace != "" {
		args = append(args, "-n", namespace)
	}
	out, err := c.kubectl(context.Background(), "", append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}

func (c *cluster) waitFor(t *testing.T, timeout time.Duration, what string, done func() (bool, error)) {
	t.Helper()
	if err := until(timeout, what, done); err != nil {
		c.fail(t, err)
	}
}

// until polls done until it reports true or an error; timeout only bounds how long a broken
// cluster is waited for, it is not what the test measures.
func until(timeout time.Duration, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := done()
		if ok && err == nil {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s (last error: %w)", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// condition is a status condition of any object.
type condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

func conditionTrue(conds []condition, typ string) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == "True"
		}
	}
	return false
}

// kwokStages are the Stages of kwok's own module (the version tools/k8s builds): nodes become
// Ready and keep a heartbeat; pods run their init containers to completion, then become
// Ready; deleted pods go away.
func kwokStages(t *testing.T) string {
	t.Helper()
	dir := moduleDir(t, "sigs.k8s.io/kwok")
	files := []string{
		"kustomize/stage/node/fast/node-initialize.yaml",
		"kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"kustomize/stage/pod/general/pod-create.yaml",
		"kustomize/stage/pod/general/pod-init-container-running.yaml",
		"kustomize/stage/pod/general/pod-init-container-completed.yaml",
		"kustomize/stage/pod/general/pod-ready.yaml",
		"kustomize/stage/pod/general/pod-complete.yaml",
		"kustomize/stage/pod/general/pod-delete.yaml",
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	return b.String()
}

// moduleDir is where the Go module cache holds module at the version tools/k8s/go.mod names.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list -m %s: %v\n%s", module, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// downloadDir is where `go mod download` puts module@version.
func downloadDir(t *testing.T, moduleVersion string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", moduleVersion).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", moduleVersion, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.Dir == "" {
		t.Fatalf("go mod download %s: %s", moduleVersion, m.Error)
	}
	return m.Dir
}

// writeServiceAccountKey writes the key pair the API server signs service account tokens with.
func writeServiceAccountKey(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "sa.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: priv})))
	write(t, filepath.Join(dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
}

func randomLoopback() string {
	b := make([]byte, 3)
	for {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<24))
		if err != nil {
			panic(err)
		}
		v := n.Int64()
		b[0], b[1], b[2] = byte(v>>16), byte(v>>8), byte(v)
		if b[0] != 0 && b[2] != 0 && b[2] != 255 {
			return fmt.Sprintf("127.%d.%d.%d", b[0], b[1], b[2])
		}
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last n bytes of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
